"""Per-stack settings: the `kafka-platform:settings` key of each Pulumi.<stack>.yaml."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Literal

from pydantic import Field, field_validator

from infra.errors import KeyPath, ProblemCollector
from infra.kafka_topic_configs import topic_config_problem
from infra.names import dns_label_problem
from infra.topology import (
    CHANNEL_TRANSPORTS,
    TOPIC_TRANSPORTS,
    ConfigValue,
    RetentionMs,
    StrictModel,
    Topology,
    Transport,
)

Provider = Literal["confluent", "msk", "local"]
Backend = Literal["kafka", "celery", "disabled"]

CONFLUENT_REPLICATION = 3  # fixed by Confluent Cloud for every topic
LOCAL_MAX_REPLICATION = 1  # the compose file runs a single Redpanda node
PROD_MIN_REPLICATION = 3
PROD_MIN_INSYNC_REPLICAS = 2

AddProblem = Callable[[KeyPath, str], None]

_MSK_VERSION = re.compile(r"^\d+\.\d+\.(\d+|x)(\.tiered|\.kraft)?$")
_MSK_INSTANCE = re.compile(r"^(kafka|express)\.[a-z0-9]+\.[a-z0-9]+$")


class ConfluentSettings(StrictModel):
    cloud: Literal["AWS", "GCP", "AZURE"]
    region: str = Field(min_length=1)
    availability: Literal["SINGLE_ZONE", "MULTI_ZONE", "LOW", "HIGH"] = "SINGLE_ZONE"
    tier: Literal["basic", "standard", "enterprise", "dedicated"] = "basic"
    ckus: int | None = Field(default=None, ge=1)
    environment_display_name: str | None = None


class MskLogging(StrictModel):
    cloudwatch_log_group: str = Field(min_length=1)


class MskSettings(StrictModel):
    kafka_version: str
    broker_count: int = Field(ge=2)
    instance_type: str
    volume_size_gib: int = Field(default=100, ge=1, le=16384)
    subnet_ids: list[str] = Field(min_length=2, max_length=3)
    security_group_ids: list[str] = Field(min_length=1)
    serverless: bool = False
    acl_bootstrap: bool = False
    logging: MskLogging | None = None

    @field_validator("kafka_version")
    @classmethod
    def _version_format(cls, value: str) -> str:
        if not _MSK_VERSION.match(value):
            raise ValueError(f"'{value}' is not an MSK Kafka version such as 3.6.0, 3.7.x or 3.9.x.kraft")
        return value

    @field_validator("instance_type")
    @classmethod
    def _instance_format(cls, value: str) -> str:
        if not _MSK_INSTANCE.match(value):
            raise ValueError(f"'{value}' is not an MSK broker type such as kafka.m5.large")
        return value

    @field_validator("subnet_ids")
    @classmethod
    def _subnets(cls, value: list[str]) -> list[str]:
        for subnet in value:
            if not subnet.startswith("subnet-"):
                raise ValueError(f"'{subnet}' is not a subnet id (subnet-...)")
        if len(set(value)) != len(value):
            raise ValueError("subnet ids must be distinct")
        return value

    @field_validator("security_group_ids")
    @classmethod
    def _security_groups(cls, value: list[str]) -> list[str]:
        for group in value:
            if not group.startswith("sg-"):
                raise ValueError(f"'{group}' is not a security group id (sg-...)")
        return value


class LocalSettings(StrictModel):
    internal_bootstrap: str = "redpanda:9092"
    external_bootstrap: str = "localhost:19092"
    secure_external_bootstrap: str = "localhost:19093"
    redpanda_image: str = "redpandadata/redpanda:v24.2.18"
    console_image: str = "redpandadata/console:v2.8.5"
    console_port: int = Field(default=8080, ge=1, le=65535)
    manifests_dir: str = "build/k8s-local"


class KafkaSettings(StrictModel):
    provider: Provider
    confluent: ConfluentSettings | None = None
    msk: MskSettings | None = None
    local: LocalSettings | None = None

    @property
    def local_or_default(self) -> LocalSettings:
        return self.local or LocalSettings()


class TopicDefaults(StrictModel):
    partitions: int = Field(default=3, ge=1)
    replication: int = Field(default=3, ge=1)
    retention: RetentionMs = 7 * 86_400_000
    min_insync_replicas: int = Field(default=2, ge=1)
    max_partitions: int | None = Field(default=None, ge=1)


class TopicOverride(StrictModel):
    partitions: int | None = Field(default=None, ge=1)
    replication: int | None = Field(default=None, ge=1)
    retention: RetentionMs | None = None
    min_insync_replicas: int | None = Field(default=None, ge=1)
    config: dict[str, ConfigValue] = Field(default_factory=dict)


class TopicSettings(StrictModel):
    defaults: TopicDefaults = Field(default_factory=TopicDefaults)
    overrides: dict[str, TopicOverride] = Field(default_factory=dict)


class MessagingSettings(StrictModel):
    backend: Backend = "kafka"
    dual_write: bool = False
    routing: dict[str, Transport] = Field(default_factory=dict)


class KubernetesSettings(StrictModel):
    namespace: str
    create_namespace: bool = False
    deployments: dict[str, str] = Field(default_factory=dict)
    restart_deployments: bool = True


class AllowedDeletes(StrictModel):
    topics: list[str] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)


class ProtectionSettings(StrictModel):
    protect: bool | None = None
    allow_deletes: AllowedDeletes = Field(default_factory=AllowedDeletes)


class PreviewSettings(StrictModel):
    base_stack: str = "dev"
    max_partitions: int = Field(default=1, ge=1)


class StackSettings(StrictModel):
    environment: str
    production: bool = False
    kafka: KafkaSettings
    topics: TopicSettings = Field(default_factory=TopicSettings)
    messaging: MessagingSettings = Field(default_factory=MessagingSettings)
    kubernetes: KubernetesSettings
    protection: ProtectionSettings = Field(default_factory=ProtectionSettings)
    preview: PreviewSettings = Field(default_factory=PreviewSettings)

    @property
    def protected(self) -> bool:
        return self.production if self.protection.protect is None else self.protection.protect


def max_replication(kafka: KafkaSettings) -> int:
    if kafka.provider == "confluent":
        return CONFLUENT_REPLICATION
    if kafka.provider == "msk" and kafka.msk is not None:
        return kafka.msk.broker_count
    return LOCAL_MAX_REPLICATION


def check_settings(settings: StackSettings, topology: Topology, collector: ProblemCollector) -> None:
    """Rules that need the topology or span several keys. Paths start at `settings`."""
    add = collector.add
    if problem := dns_label_problem(settings.environment, max_length=20):
        add(("environment",), problem)
    _check_provider(settings.kafka, add)
    _check_topics(settings, topology, add)
    _check_messaging(settings.messaging, topology, add)

    if problem := dns_label_problem(settings.kubernetes.namespace, max_length=50):
        add(("kubernetes", "namespace"), problem)
    owners: dict[str, str] = {}
    for service in topology.services:
        deployment = settings.kubernetes.deployments.get(service, service)
        owner = owners.setdefault(deployment, service)
        if owner != service:
            add(
                ("kubernetes", "deployments", service),
                f"deployment '{deployment}' already runs service '{owner}'; one service per deployment",
            )
    for service, deployment in settings.kubernetes.deployments.items():
        if service not in topology.services:
            add(("kubernetes", "deployments", service), _unknown("service", service, topology.services))
        if problem := dns_label_problem(deployment):
            add(("kubernetes", "deployments", service), problem)

    if settings.production and settings.protection.protect is False:
        add(("protection", "protect"), "a production stack cannot turn protection off")


def _check_provider(kafka: KafkaSettings, add: AddProblem) -> None:
    sections = {"confluent": kafka.confluent, "msk": kafka.msk, "local": kafka.local}
    for name, section in sections.items():
        if name == kafka.provider and section is None and name != "local":
            add(("kafka", name), f"required when provider is '{name}'")
        elif name != kafka.provider and section is not None:
            add(("kafka", name), f"only used when provider is '{name}' (provider is '{kafka.provider}')")

    if kafka.provider == "confluent" and kafka.confluent is not None:
        confluent = kafka.confluent
        if confluent.tier == "dedicated" and confluent.ckus is None:
            add(("kafka", "confluent", "ckus"), "a dedicated cluster needs ckus")
        if confluent.tier != "dedicated" and confluent.ckus is not None:
            add(
                ("kafka", "confluent", "ckus"),
                f"only dedicated clusters take ckus (tier is '{confluent.tier}')",
            )
        if confluent.tier == "basic" and confluent.availability not in {"SINGLE_ZONE", "LOW"}:
            add(("kafka", "confluent", "availability"), "basic clusters are single-zone only")
        if (
            confluent.tier == "dedicated"
            and confluent.availability in {"MULTI_ZONE", "HIGH"}
            and (confluent.ckus or 0) < 2
        ):
            add(("kafka", "confluent", "ckus"), "a multi-zone dedicated cluster needs at least 2 CKUs")

    if kafka.provider == "msk" and kafka.msk is not None:
        msk = kafka.msk
        if msk.serverless:
            add(
                ("kafka", "msk", "serverless"),
                "MSK Serverless supports only IAM authentication, not the SASL/SCRAM "
                "users and Kafka ACLs this platform gives each service; use a provisioned cluster",
            )
        if msk.broker_count % len(msk.subnet_ids) != 0:
            add(
                ("kafka", "msk", "broker_count"),
                f"{msk.broker_count} brokers cannot be spread evenly over "
                f"{len(msk.subnet_ids)} subnets; use a multiple of {len(msk.subnet_ids)}",
            )


def _check_topics(settings: StackSettings, topology: Topology, add: AddProblem) -> None:
    limit = max_replication(settings.kafka)
    defaults = settings.topics.defaults
    layers: list[tuple[KeyPath, int | None, int | None]] = [
        (("topics", "defaults"), defaults.replication, defaults.min_insync_replicas)
    ]
    for key, override in settings.topics.overrides.items():
        path: KeyPath = ("topics", "overrides", key)
        if key not in topology.topics:
            add(path, _unknown("topic", key, topology.topics))
        layers.append((path, override.replication, override.min_insync_replicas))
        for config_key in override.config:
            if problem := topic_config_problem(config_key):
                add((*path, "config", config_key), problem)

    for path, replication, min_isr in layers:
        effective_replication = replication if replication is not None else defaults.replication
        effective_isr = min_isr if min_isr is not None else defaults.min_insync_replicas
        if replication is not None:
            if settings.kafka.provider == "confluent" and replication != CONFLUENT_REPLICATION:
                add((*path, "replication"), "Confluent Cloud always uses replication 3; set 3")
            elif replication > limit:
                add((*path, "replication"), f"must be <= {limit} for provider '{settings.kafka.provider}'")
            if settings.production and replication < PROD_MIN_REPLICATION:
                add((*path, "replication"), f"must be >= {PROD_MIN_REPLICATION} in production")
        if min_isr is not None or replication is not None:
            if effective_isr > effective_replication:
                add(
                    (*path, "min_insync_replicas"),
                    f"{effective_isr} exceeds replication {effective_replication}; "
                    "producers with acks=all would always fail",
                )
            if settings.production and min_isr is not None and min_isr < PROD_MIN_INSYNC_REPLICAS:
                add((*path, "min_insync_replicas"), f"must be >= {PROD_MIN_INSYNC_REPLICAS} in production")


def _check_messaging(messaging: MessagingSettings, topology: Topology, add: AddProblem) -> None:
    if messaging.dual_write and messaging.backend == "disabled":
        add(("messaging", "dual_write"), "dual write needs a backend; it is 'disabled'")
    for event_name, transport in messaging.routing.items():
        path = ("messaging", "routing", event_name)
        event = topology.events.get(event_name)
        if event is None:
            add(path, _unknown("event", event_name, topology.events))
            continue
        if transport in TOPIC_TRANSPORTS and event.topic is None:
            add(path, f"'{transport}' needs a topic, and event '{event_name}' declares none")
        if transport in CHANNEL_TRANSPORTS and event.channel is None:
            add(path, f"'{transport}' needs a redis channel, and event '{event_name}' declares none")


def _unknown(kind: str, name: str, known: Iterable[str]) -> str:
    names = ", ".join(sorted(known))
    return f"unknown {kind} '{name}'; known: {names}"
