"""`settings.migration`: a stack moving its services from a cluster that already runs (the source)
to the stack's own cluster (the target), one service at a time, while MirrorMaker 2 copies the
topics and translates the consumer groups' offsets.

The safe order, for every topic: while any of its producers writes to the source, the mirror
carries those events to the target, so a consumer may read from either cluster; once a producer
writes to the target, nothing carries its events back, so every consumer of that topic must
already read from the target. Consumers therefore move first, producers last; a consumer moves
back only while every producer of its topics is still on the source.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import Field, field_validator

from infra.model.cluster_connection import AddProblem, ExistingClusterSettings
from infra.model.errors import KeyPath
from infra.model.topology import AlertSeconds, RetentionMs, StrictModel, Topology

ClusterSide = Literal["source", "target"]
# The secret config holding the source cluster's admin password (settings.migration.source.admin).
MIGRATION_SOURCE_PASSWORD_NAME = "migrationSourceAdminPassword"  # pragma: allowlist secret
# The Apache Kafka image whose connect-mirror-maker.sh the Deployment runs: the project's Kafka
# version (infra/live/kafka_broker.py KAFKA_VERSION; a test keeps them equal).
MIRROR_MAKER_IMAGE = "apache/kafka:4.1.1"
# The seed's advice: keep the old cluster 30 days after the last move.
DEFAULT_KEEP_MS = 30 * 86_400_000


class MirrorSettings(StrictModel):
    # Offset syncs, checkpoints, group-offset sync and topic/group refresh: how soon a moved
    # consumer finds its translated position on the target.
    sync_interval: AlertSeconds = 10
    image: str = Field(default=MIRROR_MAKER_IMAGE, min_length=1)


class MigrationAdopt(StrictModel):
    """Services' SCRAM users that already exist on the source and whose password the deployment
    may reset (principal names); any other user the stack would create there must not exist."""

    users: list[str] = Field(default_factory=list)


class MigrationSettings(StrictModel):
    source: ExistingClusterSettings
    # Where each service reads and writes; a service not listed stays on the source.
    services: dict[str, ClusterSide] = Field(default_factory=dict)
    keep: RetentionMs = DEFAULT_KEEP_MS
    mirror: MirrorSettings = Field(default_factory=MirrorSettings)
    adopt: MigrationAdopt = Field(default_factory=MigrationAdopt)

    @field_validator("keep")
    @classmethod
    def _finite_keep(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be a finite duration such as 30d: the source must be allowed to go")
        return value

    def side_of(self, service: str) -> ClusterSide:
        return self.services.get(service, "source")


def service_sides(migration: MigrationSettings | None, topology: Topology) -> dict[str, ClusterSide]:
    """Every service's cluster: `target` for all when the stack is not migrating."""
    return {
        service: migration.side_of(service) if migration is not None else "target"
        for service in sorted(topology.services)
    }


def unsafe_sides(sides: dict[str, ClusterSide], topology: Topology) -> dict[str, list[tuple[str, str]]]:
    """Per producer on the target, the (consumer on the source, topic name) pairs it would leave
    without its events: nothing mirrors the target back to the source."""
    unsafe: dict[str, list[tuple[str, str]]] = {}
    for producer, spec in sorted(topology.services.items()):
        if sides.get(producer) != "target":
            continue
        for topic in spec.produces:
            for consumer, other in sorted(topology.services.items()):
                if topic in other.consumes and sides.get(consumer) == "source":
                    unsafe.setdefault(producer, []).append((consumer, topology.topic_name(topic)))
    return unsafe


def unsafe_order_message(producer: str, at_risk: Iterable[tuple[str, str]]) -> str:
    """Why ``producer`` may not be on the target yet (the same words in validate and diff)."""
    pairs = sorted(at_risk)
    consumers = sorted({consumer for consumer, _ in pairs})
    described = "; ".join(
        f"'{consumer}' still consumes {', '.join(repr(topic) for who, topic in pairs if who == consumer)} "
        "on source"
        for consumer in consumers
    )
    return (
        f"service '{producer}' writes to target while {described}: its events would stop reaching "
        f"{', '.join(repr(c) for c in consumers)} (nothing mirrors target back to source); "
        "move consumers to target first, and back to source last"
    )


def check_migration(migration: MigrationSettings | None, topology: Topology, add: AddProblem) -> None:
    """The migration's own rules (paths start at `settings`); every provider can be its target."""
    if migration is None:
        return
    path: KeyPath = ("migration",)
    if migration.source.tls.ca_cert_file is not None or migration.source.tls.skip_verify:
        add(
            (*path, "source", "tls"),
            "MirrorMaker 2 reaches the source with the system CAs only; a private CA or skip_verify "
            "is not supported for a migration's source yet",
        )
    for service in migration.services:
        if service not in topology.services:
            known = ", ".join(sorted(topology.services))
            add((*path, "services", service), f"unknown service '{service}'; known: {known}")
    sides = service_sides(migration, topology)
    for producer, at_risk in unsafe_sides(sides, topology).items():
        add((*path, "services", producer), unsafe_order_message(producer, at_risk))
