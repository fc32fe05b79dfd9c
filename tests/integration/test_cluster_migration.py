"""A cluster migration on two real brokers (#31): the source, an Apache Kafka started here, and the
target, the session's broker, both with SCRAM and ACLs and set up through the code that ships.
MirrorMaker 2 runs from connect-mirror's jars with exactly the plan's properties and grants; a real
producing and a real consuming service (the client, on the env the plan gives each) move one by
one while they run, consumer first; every event is counted. Then each of the mirror's grants is
shown needed, and `migration status` is read at each step.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Consumer, Producer, TopicPartition

from infra.commands.migration import scope
from infra.live.cluster_admin import (
    Grant,
    ScramCredential,
    create_grants,
    delete_grants,
    delete_topics,
    end_offsets,
    upsert_scram_users,
)
from infra.live.converge import planned_grant
from infra.live.kafka_broker import Broker, BrokerOptions, local_kafka, missing_tools
from infra.live.migration_status import GroupPosition, MigrationStatus, read_status
from infra.live.mirror_maker import (
    READY_WITHIN_S,
    MirrorPasswords,
    launch,
    read_connector_states,
    running_mirror,
)
from infra.model.migration_settings import ClusterSide
from infra.plan.migration import CHECKPOINTS_TOPIC, OFFSET_SYNCS_TOPIC
from infra.plan.model import MigrationPlan, Plan
from infra.plan.resolve import load_plan
from infra.render.mirror_maker import mirror_maker_properties
from tests.broker_setup import deploy_plan
from tests.conftest import REQUIRE_BROKER, skip_unless_required
from tests.e2e.engine import existing_cluster_settings
from tests.eventually import eventually
from tests.integration.admin_env import admin_env
from tests.integration.client_env import ServiceProcess, service_env
from tests.project_files import ENCRYPTED, EXAMPLE

pytestmark = pytest.mark.integration

STACK = "moving"
FEEDER = "ingest-feeder"  # produces vectordb.ingest (added to the example for this test)
INGEST = "vectordb-ingest"  # consumes it
EVENT = "ingest.requested"
PAUSE_S = "0.01"  # the feeder's trickle: about 100 events a second


@dataclass
class Pair:
    root: Path
    source: Broker
    target: Broker
    domain: str
    passwords: dict[str, str]  # each service's, the same on both clusters
    mirror_password: str

    def plan(self, services: dict[str, ClusterSide], keep: str = "30d") -> Plan:
        settings = existing_cluster_settings(self.target)
        settings["migration"] = {
            "source": {
                "bootstrap_servers": self.source.bootstrap.split(","),
                "security_protocol": self.source.security_protocol,
                "sasl_mechanism": self.source.sasl_mechanism,
                "admin": {"username": self.source.admin_user},
            },
            "services": services,
            "keep": keep,
            "mirror": {"sync_interval": 1},
        }
        document = {
            "config": {
                "kafka-platform:kafkaAdminPassword": {"secure": ENCRYPTED},
                "kafka-platform:migrationSourceAdminPassword": {"secure": ENCRYPTED},
                "kafka-platform:settings": settings,
            }
        }
        (self.root / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
        return load_plan(self.root, STACK)

    def env(self, plan: Plan, service: str) -> dict[str, str]:
        return service_env(plan.service(service), self.passwords)

    def mirror_passwords(self) -> MirrorPasswords:
        return MirrorPasswords(source=self.mirror_password, target=self.mirror_password)

    def status(self, plan: Plan) -> MigrationStatus:
        assert plan.migration is not None
        return read_status(self.source, self.target, scope(plan, plan.migration))

    @contextmanager
    def mirror_command(self, plan: Plan) -> Iterator[None]:
        """`kafka-platform migration mirror` as a CI runner would run it, until it mirrors; Ctrl-C
        (SIGINT) after the block, and it must exit 0."""
        assert plan.migration is not None
        env = {**os.environ, **self.mirror_passwords().environment()}
        command = [sys.executable, "-m", "infra", "--project-dir", str(self.root), "migration", "mirror"]
        since_ms = int(time.time() * 1000)
        with (self.root / "mirror-command.log").open("w") as log:
            process = subprocess.Popen(
                [*command, "--stack", STACK], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            status_topic = plan.migration.connect_topics["status"]
            eventually(
                lambda: read_connector_states(self.target, status_topic, since_ms),
                lambda states: states.mirroring() or process.poll() is not None,
                timeout=READY_WITHIN_S,
                what="`migration mirror` mirroring",
            )
            assert process.poll() is None, (self.root / "mirror-command.log").read_text()[-3000:]
            yield
        finally:
            process.send_signal(signal.SIGINT)
            code = process.wait(timeout=60)
        assert code == 0, (self.root / "mirror-command.log").read_text()[-3000:]

    def status_command(self, plan: Plan) -> tuple[int, dict[str, Any]]:
        """`kafka-platform migration status` as a pipeline runs it: (exit code, its JSON)."""
        env = admin_env(self.target) | {"MIGRATION_SOURCE_ADMIN_PASSWORD": self.source.admin_password}
        command = [sys.executable, "-m", "infra", "--project-dir", str(self.root), "migration", "status"]
        result = subprocess.run(
            [*command, "--stack", STACK, "--format", "json"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,
        )
        assert result.returncode in (0, 3) and result.stdout, result.stderr
        return result.returncode, json.loads(result.stdout)


@pytest.fixture(scope="module")
def pair(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """The source broker; the example (plus a feeder) under a fresh domain on both clusters, as the
    old platform left the source and `pulumi up` leaves the target; the mirror principal on both."""
    missing = missing_tools()
    if missing:
        skip_unless_required(
            f"{' and '.join(missing)} not installed to start the source Kafka", REQUIRE_BROKER
        )
    root = tmp_path_factory.mktemp("migration")
    topology = yaml.safe_load((EXAMPLE / "topology.yaml").read_text())
    domain = f"mig{secrets.token_hex(3)}"
    topology["domain"] = domain
    topology["services"][FEEDER] = {"produces": ["vectordb.ingest"]}
    topology["events"][EVENT] = {"topic": "vectordb.ingest", "transport": "kafka", "key": "user:{user_id}"}
    (root / "topology.yaml").write_text(yaml.safe_dump(topology, sort_keys=False))
    (root / "Pulumi.yaml").write_text((EXAMPLE / "Pulumi.yaml").read_text())
    with local_kafka(root / "source-kafka", BrokerOptions()) as source:
        pair = Pair(root, source, broker, domain, {}, secrets.token_urlsafe(18))
        plan = pair.plan({})
        assert plan.migration is not None
        pair.passwords = deploy_plan(broker, plan)
        deploy_plan(source, plan, pair.passwords)
        for cluster, side in ((source, plan.migration.source), (broker, plan.migration.target)):
            admin = cluster.admin()
            credential = ScramCredential((cluster.sasl_mechanism,), pair.mirror_password)
            upsert_scram_users(admin, {side.principal: credential})
            create_grants(admin, [planned_grant(acl) for acl in side.acls])
        yield pair


def test_services_move_one_by_one_while_running_and_no_event_is_lost(
    pair: Pair, tmp_path: Path, migration_report: list[str]
) -> None:
    started = time.monotonic()
    on_source = pair.plan({})
    feeder = ServiceProcess(pair.env(on_source, FEEDER), "publish", EVENT, "0", PAUSE_S)
    consumer = ServiceProcess(pair.env(on_source, INGEST), "consume", "0", "10")
    try:
        assert len(consumer.wait_for(count=50, timeout=60)) >= 50, consumer.errors()
        # Nothing mirrors yet: the status says so and a pipeline waits (exit 3: not yet).
        code, document = pair.status_command(on_source)
        assert code == 3 and not document["in_sync"], document
        assert document["services"][INGEST] == "source"

        with pair.mirror_command(on_source):
            # 1. The consumer: stopped on the source, then started on the target once its group's
            # offsets are translated there.
            assert consumer.stop() == 0, consumer.errors()
            handled_on_source = list(consumer.seen)
            ready = eventually(
                lambda: pair.status(on_source),
                lambda status: any(step.startswith(f"{INGEST}: may move") for step in status.safe_moves),
                timeout=60,
                what=f"{INGEST} safe to move",
            )
            topic = f"{pair.domain}.vectordb.ingest"
            bound = sum(g.rereads or 0 for g in ready.groups if g.service == INGEST and g.topic == topic)
            consumer_moved = pair.plan({INGEST: "target"})
            assert consumer_moved.service(INGEST).env["KAFKA_BROKER_URL"] == pair.target.bootstrap
            consumer = ServiceProcess(pair.env(consumer_moved, INGEST), "consume", "0", "10")
            code, document = pair.status_command(consumer_moved)
            assert document["services"][INGEST] == "target", document
            assert any(step.startswith(f"{FEEDER}: may move") for step in document["safe_moves"]), document

            # 2. The producer: stopped on the source, started on the target once the mirror has
            # copied everything it wrote there (so no key's events arrive out of order).
            assert feeder.stop() == 0, feeder.errors()
            published = list(feeder.seen)
            eventually(
                lambda: pair.status(consumer_moved),
                lambda status: next(t for t in status.topics if t.topic == topic).lag == 0,
                timeout=60,
                what=f"the mirror drained {topic}",
            )
            code, document = pair.status_command(consumer_moved)
            assert code == 0 and document["in_sync"], document
            both_moved = pair.plan({INGEST: "target", FEEDER: "target"})
            feeder = ServiceProcess(
                pair.env(both_moved, FEEDER), "publish", EVENT, str(int(published[-1]) + 1), PAUSE_S
            )
            feeder.wait_for(count=100, timeout=60)
            assert feeder.stop() == 0, feeder.errors()
            published += feeder.seen
        consumer.wait_for(until=published[-1], timeout=60)
        assert consumer.stop() == 0, consumer.errors()
    finally:
        for process in (feeder, consumer):
            if process.process.poll() is None:
                process.stop()
    handled = handled_on_source + consumer.seen
    lost = sorted(set(published) - set(handled), key=int)
    duplicates = len(handled) - len(set(handled))
    migration_report.append(
        f"migration: {len(published)} events published across the move, {len(lost)} lost, "
        f"{duplicates} read twice (bound: {bound}, the re-reads `migration status` showed before the "
        f"consumer moved), {time.monotonic() - started:.0f} s"
    )
    assert lost == []
    assert duplicates <= bound
    assert set(handled) <= set(published)

    # 3. Every service on the target: the source can go once the mirror was idle for `keep`.
    everyone: dict[str, ClusterSide] = {service.name: "target" for service in both_moved.services}
    code, document = pair.status_command(pair.plan(everyone, keep="1h"))
    assert (code, document["source_can_go"]) == (0, False), document
    idle = document["idle_seconds"]
    assert idle is not None and idle < 3600
    code, document = pair.status_command(pair.plan(everyone, keep=f"{idle}s"))
    assert (code, document["source_can_go"], document["safe_moves"]) == (0, True, []), document


def seed(source: Broker, groups: dict[str, str], topics: list[str], records: int = 12) -> None:
    """Records on each topic of the source, and each group's committed position at their end, as
    the old services left them (a commit without joining: the groups have no members)."""
    producer = Producer(source.client_config())
    for topic in topics:
        for number in range(records):
            producer.produce(topic, key=f"key-{number}", value=str(number))
    assert producer.flush(30) == 0
    ends = end_offsets(source.admin(), topics)
    for group, topic in groups.items():
        consumer = Consumer(source.client_config() | {"group.id": group, "enable.auto.commit": "false"})
        positions = [TopicPartition(t, p, end) for (t, p), end in sorted(ends.items()) if t == topic and end]
        consumer.commit(offsets=positions, asynchronous=False)
        consumer.close()


def kind(migration: MigrationPlan, side: str, grant: Grant) -> tuple[str, str, str, str]:
    """What a grant is for: every mirrored topic's (or synced group's) grant is the same kind."""
    name = grant.resource_name
    if grant.resource_type == "TOPIC" and name in migration.topics:
        name = "<mirrored topic>"
    elif grant.resource_type == "GROUP" and name in migration.groups:
        name = "<synced group>"
    return side, grant.operation, grant.resource_type, name


# The broker's refusal as MirrorMaker logs it; a topic it could not create is then missing.
REFUSAL = re.compile(r"AuthorizationException|AUTHORIZATION_FAILED|Not authorized|UNKNOWN_TOPIC_OR_PARTITION")


def first_refusal(work: Path, properties: str, pair: Pair, resource: str, within: float = 45) -> str | None:
    """Run MirrorMaker until it logs the broker's refusal about ``resource`` (that text, or None
    after ``within`` seconds), then stop it. The log is read as it grows: a refused consumer can
    write a million lines a minute."""
    mirror = launch(work, properties, pair.mirror_passwords())
    try:
        deadline = time.monotonic() + within
        read, tail = 0, ""
        while time.monotonic() < deadline:
            with mirror.log.open(errors="replace") as log:
                log.seek(read)
                chunk = log.read(4_000_000)
                read = log.tell()
            text = tail + chunk
            for match in REFUSAL.finditer(text):
                around = text[max(match.start() - 400, 0) : match.end() + 400]
                if resource in around:
                    return around
            tail = text[-800:]
            if mirror.exited() is not None:
                return None
            if len(chunk) < 4_000_000:
                time.sleep(0.3)
        return None
    finally:
        mirror.stop(timeout=2)  # nothing of a refused run is worth its graceful stop


def test_each_mirror_grant_is_needed(pair: Pair, tmp_path: Path, migration_report: list[str]) -> None:
    """Each kind of grant the plan gives MirrorMaker, removed on the real broker. Grants of one kind
    hold for every topic or group alike, so each kind is shown on one. Three kinds fail only their
    own topic or group: one run without them, where a control group and topic keep working. Without
    any other, MirrorMaker stops (a worker, connector or task fails): a short run each, until it
    logs the broker's authorization failure naming that resource."""
    started = time.monotonic()
    plan = pair.plan({})
    migration = plan.migration
    assert migration is not None
    source_grants = {planned_grant(acl) for acl in migration.source.acls}
    target_grants = {planned_grant(acl) for acl in migration.target.acls}
    principal = f"User:{migration.source.principal}"
    properties = mirror_maker_properties(plan)

    def topic(key: str) -> str:
        return f"{pair.domain}.{key}"

    def group(service: str) -> str:
        found = plan.service(service).consumer_group
        assert found is not None
        return found

    def grant(
        operation: str, resource_type: str, name: str, grants: set[Grant], pattern: str = "LITERAL"
    ) -> Grant:
        wanted = Grant(principal, operation, resource_type, name, pattern)
        assert wanted in grants, f"the plan has no {wanted.text}"
        return wanted

    # 1. One run: each removed grant on a topic or group of its own; api's group on
    # guardian.responses keeps every grant and must be translated.
    unread = topic("context.vectorized")
    uncommitted, unjoined, control = (group(s) for s in ("context-vectorizer", "guardian", "api"))
    removed_on_source = [grant("READ", "TOPIC", unread, source_grants)]
    removed_on_target = [
        grant("READ", "TOPIC", topic("context.aggregated"), target_grants),
        grant("READ", "GROUP", unjoined, target_grants),
    ]
    seed(
        pair.source,
        {
            uncommitted: topic("context.aggregated"),
            unjoined: topic("guardian.requests"),
            control: topic("guardian.responses"),
        },
        [
            topic(key)
            for key in ("context.aggregated", "guardian.requests", "guardian.responses", "context.vectorized")
        ],
    )
    delete_grants(pair.source.admin(), removed_on_source)
    delete_grants(pair.target.admin(), removed_on_target)
    try:
        with running_mirror(tmp_path / "per-resource", properties, pair.mirror_passwords(), pair.target):
            positions: dict[str, GroupPosition] = {}

            def settled() -> MigrationStatus:
                status = pair.status(plan)
                positions.update({g.group: g for g in status.groups if g.topic != topic("vectordb.ingest")})
                return status

            eventually(
                settled,
                lambda status: (
                    positions[control].target_behind == 0
                    and next(t for t in status.topics if t.topic == topic("guardian.responses")).lag == 0
                ),
                timeout=60,
                what="the control group translated",
            )
            time.sleep(3)  # three more sync intervals
            status = settled()
    finally:
        create_grants(pair.source.admin(), removed_on_source)
        create_grants(pair.target.admin(), removed_on_target)
    lags = {t.topic: t.lag for t in status.topics}
    assert lags[unread] > 0, "without READ on the source topic nothing of it is mirrored"
    assert lags[topic("context.aggregated")] == lags[topic("guardian.requests")] == 0
    for untranslated in (uncommitted, unjoined):
        assert not positions[untranslated].translated, f"{untranslated} was translated without its grant"
    shown = [g.text for g in removed_on_source + removed_on_target]

    # 2. Without any of these MirrorMaker stops: a short run each.
    internal = migration.internal_prefix
    stopping: list[tuple[Broker, Grant, list[str]]] = [
        (pair.source, grant("DESCRIBE", "GROUP", control, source_grants), []),
        (pair.target, grant("WRITE", "TOPIC", topic("guardian.responses"), target_grants), []),
        (pair.target, grant("READ", "GROUP", internal, target_grants), []),
    ]
    connect_topics = sorted(migration.connect_topics.values())
    for operation in ("READ", "WRITE", "CREATE"):
        # A CREATE grant is used only when the topic is not there yet: those are deleted first.
        creating = operation == "CREATE"
        for name in (OFFSET_SYNCS_TOPIC, CHECKPOINTS_TOPIC):
            stopping.append(
                (pair.target, grant(operation, "TOPIC", name, target_grants), [name] if creating else [])
            )
        prefixed = grant(operation, "TOPIC", f"{internal}.", target_grants, "PREFIXED")
        stopping.append((pair.target, prefixed, connect_topics if creating else []))
    kinds = {kind(migration, "source", g) for g in source_grants} | {
        kind(migration, "target", g) for g in target_grants
    }
    removed_kinds = {kind(migration, "source", g) for g in removed_on_source}
    removed_kinds |= {kind(migration, "target", g) for g in removed_on_target}
    removed_kinds |= {kind(migration, "source" if c is pair.source else "target", g) for c, g, _ in stopping}
    assert removed_kinds == kinds, "every kind of grant the plan gives is shown needed"
    for number, (cluster, removed, recreated) in enumerate(stopping):
        # Something new to copy, and a new position of the control group to checkpoint.
        seed(pair.source, {control: topic("guardian.responses")}, [topic("guardian.responses")], records=1)
        if recreated:
            delete_topics(pair.target.admin(), recreated)
        delete_grants(cluster.admin(), [removed])
        try:
            refusal = first_refusal(tmp_path / f"without-{number}", properties, pair, removed.resource_name)
            absent = set(recreated) - set(pair.target.admin().list_topics(timeout=10).topics)
        finally:
            create_grants(cluster.admin(), [removed])
        assert refusal is not None, f"MirrorMaker logged no refusal without {removed.text}"
        assert absent == set(recreated), f"{sorted(set(recreated) - absent)} created without {removed.text}"
        shown.append(removed.text)
    migration_report.append(
        f"{len(shown)} kinds of mirror grant shown needed ({time.monotonic() - started:.0f} s): "
        + "; ".join(shown)
    )
