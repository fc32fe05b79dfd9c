"""What a running cluster holds, read through the Kafka Admin API (confluent-kafka): topics with
their partitions, replication and the configs set on them, and every ACL binding.

`import` turns it into a topology, `drift` compares it with a stack's plan. Both read only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
)

from infra.live.apply_plan import EVERY_ACL, OPERATIONS, PATTERNS, RESOURCE_TYPES
from infra.live.kafka_broker import Broker

# Topics Kafka, Confluent, Redpanda, Schema Registry and Connect's defaults keep for themselves.
INTERNAL_TOPIC_PREFIXES = ("__", "_schemas", "_confluent", "_redpanda", "_internal_connectors")
REQUEST_TIMEOUT_S = 20

_RESOURCE_NAMES = {value: key for key, value in RESOURCE_TYPES.items()}
_OPERATION_NAMES = {value: key for key, value in OPERATIONS.items()}
_PATTERN_NAMES = {value: key for key, value in PATTERNS.items()}


class ClusterUnreachable(Exception):
    """The cluster could not be read (address, credentials, permissions, timeout)."""


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


def read_cluster(broker: Broker, timeout: float = REQUEST_TIMEOUT_S) -> LiveCluster:
    """Every topic (internal ones listed apart) and every ACL the admin identity can see."""
    login_failures: list[str] = []

    def on_error(error: KafkaError) -> None:
        if error.code() == KafkaError._AUTHENTICATION:
            login_failures.append(error.str())

    admin = AdminClient(
        broker.client_config()
        | {"socket.timeout.ms": str(int(timeout * 1000)), "error_cb": on_error, "log_level": 0}
    )
    try:
        metadata = admin.list_topics(timeout=timeout)
        names = sorted(name for name in metadata.topics if not is_internal(name))
        configs = _topic_configs(admin, names, timeout)
        acls = admin.describe_acls(EVERY_ACL, request_timeout=timeout).result()
    except KafkaException as error:
        admin.poll(0)  # error_cb is served only by poll()
        if login_failures:
            raise ClusterUnreachable(
                f"the login to {broker.bootstrap} as '{broker.admin_user}' ({broker.sasl_mechanism}) "
                f"failed: {login_failures[-1]}{_old_librdkafka_hint()}"
            ) from None
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
    return LiveAcl(
        principal=str(binding.principal),
        resource_type=_RESOURCE_NAMES.get(binding.restype, binding.restype.name),
        resource_name=str(binding.name),
        pattern_type=_PATTERN_NAMES.get(binding.resource_pattern_type, "OTHER"),
        operation=_OPERATION_NAMES.get(binding.operation, binding.operation.name),
        permission=binding.permission_type.name,
        host=str(binding.host),
    )


def acl_binding(acl: LiveAcl) -> AclBinding:
    """The binding a live ACL was read from (to delete exactly it)."""
    return AclBinding(
        RESOURCE_TYPES[acl.resource_type],
        acl.resource_name,
        PATTERNS[acl.pattern_type],
        acl.principal,
        acl.host,
        AclOperation[acl.operation],
        AclPermissionType[acl.permission],
    )


SCRAM_FIXED_IN = (2, 6, 1)  # librdkafka#4895: Kafka 4.x refuses older clients' SCRAM proofs


def _old_librdkafka_hint() -> str:
    version = confluent_kafka.libversion()[0]
    numbers = tuple(int(part) for part in version.split("-")[0].split(".")[:3])
    if numbers >= SCRAM_FIXED_IN:
        return ""
    return f" (librdkafka {version} is older than 2.6.1, whose SCRAM logins Kafka 4.x refuses)"
