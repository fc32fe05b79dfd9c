"""What a running cluster holds, read through the Kafka Admin API (confluent-kafka): topics with
their partitions, replication and the configs set on them, and every ACL binding.

`import` turns it into a topology, `drift` compares it with a stack's plan. Both read only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from confluent_kafka import KafkaException
from confluent_kafka.admin import AclBinding, AdminClient, ConfigEntry, ConfigResource, ConfigSource

from infra.live.cluster_admin import (
    EVERY_ACL,
    AdminLogin,
    ClusterUnreachable,
    Grant,
    Unsupported,
    connect,
    read_scram_users,
)
from infra.live.kafka_broker import Broker

# Topics Kafka, Confluent, Redpanda, Schema Registry and Connect's defaults keep for themselves.
INTERNAL_TOPIC_PREFIXES = ("__", "_schemas", "_confluent", "_redpanda", "_internal_connectors")
REQUEST_TIMEOUT_S = 20

__all__ = ["ClusterUnreachable", "LiveAcl", "LiveCluster", "LiveTopic", "read_cluster"]


@dataclass(frozen=True)
class LiveTopic:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]  # only what is set on the topic itself (not broker or default values)
    effective: dict[str, str]  # every config's value in force, wherever it comes from


@dataclass(frozen=True, order=True)
class LiveAcl:
    """One binding as the cluster reports it; names as in the plan (TOPIC, READ, LITERAL, ALLOW)."""

    principal: str  # "User:<name>"
    resource_type: str
    resource_name: str
    pattern_type: str
    operation: str
    permission: str
    host: str

    def grant(self) -> Grant:
        """The same binding as the Kafka-admin core writes and deletes it."""
        return Grant(
            self.principal,
            self.operation,
            self.resource_type,
            self.resource_name,
            self.pattern_type,
            self.host,
            self.permission,
        )

    def __str__(self) -> str:
        star = "*" if self.pattern_type == "PREFIXED" else ""
        return (
            f"{self.permission} {self.principal} {self.operation} {self.resource_type} "
            f"{self.resource_name}{star}" + ("" if self.host == "*" else f" from {self.host}")
        )


@dataclass(frozen=True)
class LiveCluster:
    topics: dict[str, LiveTopic]
    acls: list[LiveAcl]
    internal_topics: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)  # SCRAM users (none where the cluster cannot list them)


def is_internal(topic: str) -> bool:
    return topic.startswith(INTERNAL_TOPIC_PREFIXES)


def connection(
    bootstrap: str | None = None,
    security_protocol: str | None = None,
    sasl_mechanism: str | None = None,
    username: str | None = None,
) -> Broker | None:
    """The cluster to read: flags first, then the variables the integration tests read
    (KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM,
    KAFKA_ADMIN_USERNAME); the password only ever from KAFKA_ADMIN_PASSWORD."""
    bootstrap = bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        return None
    return Broker(
        bootstrap=bootstrap,
        security_protocol=security_protocol or os.environ.get("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
        sasl_mechanism=sasl_mechanism or os.environ.get("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
        admin_user=username or os.environ.get("KAFKA_ADMIN_USERNAME", ""),
        admin_password=os.environ.get("KAFKA_ADMIN_PASSWORD", ""),
        description=bootstrap,
    )


def admin_login(broker: Broker) -> AdminLogin:
    return AdminLogin(
        bootstrap_servers=tuple(broker.bootstrap.split(",")),
        security_protocol=broker.security_protocol,
        sasl_mechanism=broker.sasl_mechanism,
        username=broker.admin_user,
        password=broker.admin_password,
    )


def read_cluster(broker: Broker, timeout: float = REQUEST_TIMEOUT_S) -> LiveCluster:
    """Every topic (internal ones listed apart) and every ACL the admin identity can see."""
    admin, _ = connect(admin_login(broker), within=timeout)
    try:
        metadata = admin.list_topics(timeout=timeout)
        names = sorted(name for name in metadata.topics if not is_internal(name))
        configs = _topic_configs(admin, names, timeout)
        acls = admin.describe_acls(EVERY_ACL, request_timeout=timeout).result()
        try:
            users = sorted(read_scram_users(admin))
        except (Unsupported, KafkaException):  # not every admin may list users (MSK, read-only)
            users = []
    except KafkaException as error:
        raise ClusterUnreachable(
            f"cannot read the cluster at {broker.bootstrap}: {error.args[0].str()}"
        ) from None
    topics = {}
    for name in names:
        partitions = metadata.topics[name].partitions
        replicas = len(partitions[0].replicas) if partitions else 0
        own, effective = configs[name]
        topics[name] = LiveTopic(name, len(partitions), replicas, own, effective)
    return LiveCluster(
        topics=topics,
        acls=sorted(_live_acl(binding) for binding in acls),
        internal_topics=sorted(name for name in metadata.topics if is_internal(name)),
        users=users,
    )


def _topic_configs(
    admin: AdminClient, names: Sequence[str], timeout: float
) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """Per topic: (the configs set on the topic, every config in force)."""
    if not names:
        return {}
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
    futures = admin.describe_configs(resources, request_timeout=timeout)
    configs: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    for resource, future in futures.items():
        entries = {key: entry for key, entry in sorted(future.result().items()) if entry.value is not None}
        own = {key: str(entry.value) for key, entry in entries.items() if _set_on_topic(entry)}
        configs[resource.name] = (own, {key: str(entry.value) for key, entry in entries.items()})
    return configs


def _set_on_topic(entry: ConfigEntry) -> bool:
    source = entry.source
    return bool(int(getattr(source, "value", source)) == ConfigSource.DYNAMIC_TOPIC_CONFIG.value)


def _live_acl(binding: AclBinding) -> LiveAcl:
    grant = Grant.from_binding(binding)
    return LiveAcl(
        principal=grant.principal,
        resource_type=grant.resource_type,
        resource_name=grant.resource_name,
        pattern_type=grant.pattern_type,
        operation=grant.operation,
        permission=grant.permission,
        host=grant.host,
    )
