"""Per-stack settings: the `kafka-platform:settings` key of each Pulumi.<stack>.yaml."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, field_validator

from infra.model.cluster_connection import IDEMPOTENT_WRITE_IMPLIED_FROM, AddProblem, ExistingClusterSettings
from infra.model.errors import KeyPath, ProblemCollector
from infra.model.kafka_topic_configs import topic_config_problem
from infra.model.migration_settings import MigrationSettings, check_migration
from infra.model.names import dns_label_problem
from infra.model.topology import (
    CHANNEL_TRANSPORTS,
    TOPIC_TRANSPORTS,
    AlertSeconds,
    ConfigValue,
    RetentionMs,
    StrictModel,
    Topology,
    Transport,
)

Provider = Literal["confluent", "msk", "kafka", "local"]
Backend = Literal["kafka", "celery", "disabled"]

CONFLUENT_REPLICATION = 3  # fixed by Confluent Cloud for every topic
LOCAL_MAX_REPLICATION = 1  # the compose file runs a single Redpanda node
PROD_MIN_REPLICATION = 3
PROD_MIN_INSYNC_REPLICAS = 2


_MSK_VERSION = re.compile(r"^\d+\.\d+\.(\d+|x)(\.tiered|\.kraft)?$")
_MSK_INSTANCE = re.compile(r"^(kafka|express)\.[a-z0-9]+\.[a-z0-9]+$")
# Confluent Cloud sends `deletion_protection` for these cluster types only (docs: "Cluster
# Deletion Protection"); for basic and standard clusters the argument is not offered.
DELETION_PROTECTION_TIERS = frozenset({"enterprise", "dedicated"})


class ExistingConfluentCluster(StrictModel):
    """A cluster that already runs: the stack uses it instead of creating an environment and
    a cluster (and can adopt its topics, see `adopt`)."""

    environment_id: str = Field(pattern=r"^env-[A-Za-z0-9]+$")
    cluster_id: str = Field(pattern=r"^lkc-[A-Za-z0-9]+$")


class ConfluentSettings(StrictModel):
    existing_cluster: ExistingConfluentCluster | None = None
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
    # Where `pulumi up` reaches the brokers for topics and ACLs: from inside the VPC (port 9096,
    # e.g. a self-hosted runner) or, once the cluster exists, over MSK public access (9196).
    access: Literal["vpc", "public"] = "vpc"
    logging: MskLogging | None = None

    @property
    def needs_idempotent_write_acl(self) -> bool:
        major, minor = (int(part) for part in self.kafka_version.split(".")[:2])
        return (major, minor) < IDEMPOTENT_WRITE_IMPLIED_FROM

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
    # Redis for events routed to `redis`/`both` and for the Celery fallback (added to the
    # compose file only when something needs it).
    redis_image: str = "redis:7.4-alpine"
    redis_host_port: int = Field(default=16379, ge=1, le=65535)
    # The Schema Registry's port on the host when the topology has event schemas: Redpanda's
    # built-in one with Compose, Apicurio Registry on the path without Docker (whose health
    # endpoint takes the port 1000 above).
    schema_registry_port: int = Field(default=18081, ge=1, le=64535)
    # The `monitoring` compose profile: the exporter the generated rules read, and Prometheus.
    kafka_exporter_image: str = "danielqsj/kafka-exporter:v1.9.0"
    redis_exporter_image: str = "oliver006/redis_exporter:v1.67.0"
    prometheus_image: str = "prom/prometheus:v3.5.0"
    prometheus_port: int = Field(default=9090, ge=1, le=65535)


ProviderSettings = ConfluentSettings | MskSettings | ExistingClusterSettings | LocalSettings
# The settings section each provider reads (`kafka.<section>`).
PROVIDER_SECTIONS: dict[str, str] = {
    "confluent": "confluent",
    "msk": "msk",
    "kafka": "cluster",
    "local": "local",
}


class KafkaSettings(StrictModel):
    provider: Provider
    confluent: ConfluentSettings | None = None
    msk: MskSettings | None = None
    cluster: ExistingClusterSettings | None = None
    local: LocalSettings | None = None

    @property
    def provider_settings(self) -> ProviderSettings | None:
        section: ProviderSettings | None = getattr(self, PROVIDER_SECTIONS[self.provider])
        return section

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


# The secret config that holds a connection URL with a credential, by messaging setting.
SECRET_URL_CONFIG = {"redis": "redisUrl", "celery_broker": "celeryBrokerUrl"}
URL_SCHEMES = {
    "redis": ("redis", "rediss"),
    "celery_broker": ("redis", "rediss", "amqp", "amqps", "sqs"),
}


class ConnectionSettings(StrictModel):
    """Where services reach Redis or the Celery broker: a URL that holds no credential, or
    `secret: true` for a URL kept as secret config (`pulumi config set --secret
    kafka-platform:redisUrl|celeryBrokerUrl <url>`), which reaches services only in their Secret."""

    url: str | None = None
    secret: bool = False


class ServiceMessaging(StrictModel):
    """One service's own backend and dual write; what it leaves unset follows the stack's."""

    backend: Backend | None = None
    dual_write: bool | None = None


class MessagingSettings(StrictModel):
    # Every service's, unless `services.<name>` says otherwise (services migrate, and fall
    # back, one at a time).
    backend: Backend = "kafka"
    dual_write: bool = False
    services: dict[str, ServiceMessaging] = Field(default_factory=dict)
    routing: dict[str, Transport] = Field(default_factory=dict)
    redis: ConnectionSettings | None = None  # for events routed to `redis` or `both`
    celery_broker: ConnectionSettings | None = None  # for `backend: celery`; set it ahead of a flip

    def backend_of(self, service: str) -> Backend:
        own = self.services.get(service)
        return own.backend if own is not None and own.backend is not None else self.backend

    def dual_write_of(self, service: str) -> bool:
        own = self.services.get(service)
        return own.dual_write if own is not None and own.dual_write is not None else self.dual_write


class KubernetesSettings(StrictModel):
    namespace: str
    create_namespace: bool = False
    # Rollouts are opt-in: only the Deployments named here (service -> Deployment) get the
    # checksum annotation that restarts their pods when the service's env or credential changes.
    # A Patch on a Deployment that does not exist would create it (server-side apply).
    deployments: dict[str, str] = Field(default_factory=dict)
    # How long `pulumi up` waits for a rolled Deployment to become ready; none (the default): it
    # does not wait, so an outage or the emergency switch to Celery never blocks on pods.
    rollout_wait: AlertSeconds | None = None


def _kubernetes_none(value: object) -> object:
    return None if value == "none" else value


KubernetesOutput = Annotated[KubernetesSettings | None, BeforeValidator(_kubernetes_none)]


AclMode = Literal["literal", "prefixed", "rbac"]
# Confluent Cloud's default ACL limit per cluster, by cluster type (basic: the cluster-types page;
# the others: the published defaults when this was written). `acls.limit` overrides it.
CONFLUENT_ACL_LIMITS = {"basic": 1_000, "standard": 1_000, "enterprise": 4_000, "dedicated": 10_000}
# Confluent grants roles on topics, groups and transactional ids on these cluster types only.
RBAC_TIERS = frozenset({"standard", "enterprise", "dedicated"})


class AclSettings(StrictModel):
    # literal: one binding per topic and operation (the default).
    # prefixed: a service's topic grants folded into PREFIXED bindings wherever every declared
    #   topic under the prefix is already granted to it; far fewer bindings, for ACL limits.
    # rbac: Confluent Cloud role bindings (DeveloperRead/DeveloperWrite/ResourceOwner) instead of
    #   ACLs, as Confluent recommends; not on basic clusters.
    mode: AclMode = "literal"
    # The cluster's ACL limit, when it is not the provider's published default (or to set one
    # for MSK and existing clusters, which have none by default).
    limit: int | None = Field(default=None, ge=1)


class AllowedDeletes(StrictModel):
    topics: list[str] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)


class ProtectionSettings(StrictModel):
    protect: bool | None = None
    allow_deletes: AllowedDeletes = Field(default_factory=AllowedDeletes)


class PreviewSettings(StrictModel):
    base_stack: str = "dev"
    max_partitions: int = Field(default=1, ge=1)
    # A pr-<n> namespace is new and empty: patching its Deployments would create broken ones.
    rollouts: bool = False
    # Previews copy their base stack's settings; they rotate credentials only when asked.
    rotate_credentials: bool = False


class RotationSettings(StrictModel):
    """Bump `generation` to give every service a new credential without downtime: the new one
    is created beside the old, written to the Secret (pods roll where mapped), and the old one
    stays valid for `overlap`, then is revoked by the first `pulumi up` after that."""

    generation: int = Field(default=1, ge=1)
    overlap: RetentionMs = 86_400_000

    @field_validator("overlap")
    @classmethod
    def _finite_overlap(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be a finite duration such as 1d: the old credential must end")
        return value


class CredentialSettings(StrictModel):
    rotation: RotationSettings = Field(default_factory=RotationSettings)


class AdoptSettings(StrictModel):
    """What already exists on the cluster and the next deployment imports (Pulumi's `import`)
    instead of creating. `python -m infra import --stack <stack>` lists it; once that deployment
    is done the section can go (an import id only matters while the resource is not in state)."""

    topics: list[str] = Field(default_factory=list)  # full topic names
    acls: list[str] = Field(default_factory=list)  # "<service> <OPERATION> <RESOURCE_TYPE> <name>[*]"
    # SCRAM users (principal names) that exist and whose password the deployment may reset.
    users: list[str] = Field(default_factory=list)
    # Confluent: the existing service account (sa-...) a service keeps, so its ACLs can be adopted.
    service_accounts: dict[str, str] = Field(default_factory=dict)
    # Schema Registry subjects that exist and whose versions and level the deployment takes over.
    subjects: list[str] = Field(default_factory=list)


class PrometheusSettings(StrictModel):
    """A PrometheusRule per service (prometheus-operator's CRD must be installed) and a Grafana
    dashboard ConfigMap, in the stack's namespace."""

    rules: bool = False
    dashboard: bool = False
    # Labels the Prometheus's ruleSelector matches (kube-prometheus-stack: {release: <its release>}).
    rule_labels: dict[str, str] = Field(default_factory=dict)


class CloudWatchSettings(StrictModel):
    """MSK: CloudWatch alarms on the consumer-lag metrics MSK publishes."""

    alarms: bool = False
    sns_topic_arn: str | None = None  # where alarms notify; none: the stack creates a topic


class MonitoringSettings(StrictModel):
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    cloudwatch: CloudWatchSettings = Field(default_factory=CloudWatchSettings)


# A Schema Registry's compatibility levels (Confluent's names; Apicurio's ccompat, Karapace and
# Redpanda take the same).
CompatibilityLevel = Literal[
    "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE"
]


# The secret config holding the registry's password (settings.schemas.registry.username).
SCHEMA_REGISTRY_PASSWORD_NAME = "schemaRegistryPassword"  # pragma: allowlist secret
# Providers whose registry is any Confluent-compatible one the team runs (Confluent Cloud's is
# the environment's own; a local stack's is the compose mirror's).
REGISTRY_PROVIDERS = ("kafka", "msk")


class SchemaRegistrySettings(StrictModel):
    """A Confluent-compatible Schema Registry (Confluent Platform, Redpanda, Apicurio's ccompat
    API, Karapace): its REST base URL and, with basic auth, the user whose password is secret
    config `kafka-platform:schemaRegistryPassword`."""

    url: str
    username: str | None = None


class SchemaSettings(StrictModel):
    # What every subject of the stack must keep; `subjects` overrides it per subject name.
    compatibility: CompatibilityLevel = "BACKWARD"
    subjects: dict[str, CompatibilityLevel] = Field(default_factory=dict)
    registry: SchemaRegistrySettings | None = None


class StackSettings(StrictModel):
    environment: str
    production: bool = False
    kafka: KafkaSettings
    topics: TopicSettings = Field(default_factory=TopicSettings)
    messaging: MessagingSettings = Field(default_factory=MessagingSettings)
    # `none`: no Kubernetes objects; each service's env is a stack output instead.
    kubernetes: KubernetesOutput
    protection: ProtectionSettings = Field(default_factory=ProtectionSettings)
    preview: PreviewSettings = Field(default_factory=PreviewSettings)
    acls: AclSettings = Field(default_factory=AclSettings)
    adopt: AdoptSettings = Field(default_factory=AdoptSettings)
    credentials: CredentialSettings = Field(default_factory=CredentialSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    schemas: SchemaSettings = Field(default_factory=SchemaSettings)
    # Moving the services from a cluster that already runs to this stack's (docs/migration.md).
    migration: MigrationSettings | None = None

    @property
    def protected(self) -> bool:
        return self.production if self.protection.protect is None else self.protection.protect


def max_replication(kafka: KafkaSettings) -> int | None:
    """The highest replication the provider allows; None when only the broker knows."""
    if kafka.provider == "confluent":
        return CONFLUENT_REPLICATION
    if kafka.provider == "msk" and kafka.msk is not None:
        return kafka.msk.broker_count
    if kafka.provider == "kafka":
        return None
    return LOCAL_MAX_REPLICATION


def check_settings(settings: StackSettings, topology: Topology, collector: ProblemCollector) -> None:
    """Rules that need the topology or span several keys. Paths start at `settings`."""
    add = collector.add
    if problem := dns_label_problem(settings.environment, max_length=20):
        add(("environment",), problem)
    _check_provider(settings.kafka, add)
    _check_acl_mode(settings, add)
    _check_topics(settings, topology, add)
    _check_messaging(settings.messaging, topology, add, local=settings.kafka.provider == "local")

    if settings.kubernetes is not None:
        _check_kubernetes(settings.kubernetes, topology, add)
    _check_monitoring(settings, add)
    _check_schema_registry(settings, add)
    check_migration(settings.migration, topology, add)

    if settings.production and settings.protection.protect is False:
        add(("protection", "protect"), "a production stack cannot turn protection off")


def _check_kubernetes(kubernetes: KubernetesSettings, topology: Topology, add: AddProblem) -> None:
    if problem := dns_label_problem(kubernetes.namespace, max_length=50):
        add(("kubernetes", "namespace"), problem)
    owners: dict[str, str] = {}
    for service, deployment in kubernetes.deployments.items():
        path = ("kubernetes", "deployments", service)
        if service not in topology.services:
            add(path, _unknown("service", service, topology.services))
        if problem := dns_label_problem(deployment):
            add(path, problem)
        owner = owners.setdefault(deployment, service)
        if owner != service:
            add(path, f"deployment '{deployment}' already runs service '{owner}'; one service per deployment")


def _check_provider(kafka: KafkaSettings, add: AddProblem) -> None:
    for provider, section in PROVIDER_SECTIONS.items():
        present = getattr(kafka, section) is not None
        if provider == kafka.provider and not present and provider != "local":
            add(("kafka", section), f"required when provider is '{provider}'")
        elif provider != kafka.provider and present:
            add(
                ("kafka", section),
                f"only used when provider is '{provider}' (provider is '{kafka.provider}')",
            )

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
        if msk.access == "public" and msk.acl_bootstrap:
            add(
                ("kafka", "msk", "access"),
                "MSK turns on public access only while allow.everyone.if.no.acl.found is false; "
                "finish acl_bootstrap from inside the VPC first, then switch access to public",
            )
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


def _check_acl_mode(settings: StackSettings, add: AddProblem) -> None:
    if settings.acls.mode != "rbac":
        return
    if settings.kafka.provider != "confluent":
        add(("acls", "mode"), f"role bindings are Confluent Cloud's; provider is '{settings.kafka.provider}'")
    elif settings.kafka.confluent is not None and settings.kafka.confluent.tier not in RBAC_TIERS:
        add(
            ("acls", "mode"),
            "Confluent offers the Kafka resource roles (DeveloperRead, DeveloperWrite, ResourceOwner) "
            "on standard, enterprise and dedicated clusters, not basic",
        )


def _check_topics(settings: StackSettings, topology: Topology, add: AddProblem) -> None:
    limit = max_replication(settings.kafka)
    defaults = settings.topics.defaults
    layers: list[tuple[KeyPath, int | None, int | None]] = [
        (("topics", "defaults"), defaults.replication, defaults.min_insync_replicas)
    ]
    for key, override in settings.topics.overrides.items():
        path: KeyPath = ("topics", "overrides", key)
        if key not in topology.all_topics:
            add(path, _unknown("topic", key, topology.all_topics))
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
            elif limit is not None and replication > limit:
                add((*path, "replication"), f"must be <= {limit} for provider '{settings.kafka.provider}'")
            if settings.production and replication < PROD_MIN_REPLICATION:
                add((*path, "replication"), f"must be >= {PROD_MIN_REPLICATION} in production")
        if min_isr is not None or replication is not None:
            if effective_isr > effective_replication:
                add(
                    (*path, "min_insync_replicas"),
                    f"{effective_isr} exceeds replication {effective_replication}; "
                    "producers with acks=all would always fail",
                    reads=[("topics", "defaults")],
                )
            if settings.production and min_isr is not None and min_isr < PROD_MIN_INSYNC_REPLICAS:
                add((*path, "min_insync_replicas"), f"must be >= {PROD_MIN_INSYNC_REPLICAS} in production")


def redis_events(messaging: MessagingSettings, topology: Topology) -> list[str]:
    """The events this stack routes to a Redis channel (`redis` or `both`)."""
    return sorted(
        name
        for name, event in topology.events.items()
        if messaging.routing.get(name, event.transport) in CHANNEL_TRANSPORTS
    )


def celery_services(messaging: MessagingSettings, topology: Topology) -> list[str]:
    """The services whose backend is Celery in this stack (their own, or the stack's)."""
    return sorted(service for service in topology.services if messaging.backend_of(service) == "celery")


def dual_writers(messaging: MessagingSettings, topology: Topology) -> list[str]:
    """The services that write every event to Kafka and to Celery (their own dual write, or the
    stack's)."""
    return sorted(service for service in topology.services if messaging.dual_write_of(service))


def _check_messaging(
    messaging: MessagingSettings, topology: Topology, add: AddProblem, *, local: bool = False
) -> None:
    for setting in ("redis", "celery_broker"):
        connection: ConnectionSettings | None = getattr(messaging, setting)
        if connection is not None:
            _check_connection(setting, connection, add)
    if not local:  # a local stack uses the compose Redis
        routed = redis_events(messaging, topology)
        if routed and messaging.redis is None:
            shown = ", ".join(routed[:5]) + (f" and {len(routed) - 5} more" if len(routed) > 5 else "")
            add(("messaging", "redis"), f"required: events {shown} go to Redis in this stack")
        on_celery = ["messaging.backend"] if messaging.backend == "celery" else []
        on_celery += [
            f"messaging.services.{service}.backend"
            for service, own in sorted(messaging.services.items())
            if own.backend == "celery" and service in topology.services
        ]
        if on_celery and messaging.celery_broker is None:
            verb = "is" if len(on_celery) == 1 else "are"
            add(("messaging", "celery_broker"), f"required: {', '.join(on_celery)} {verb} 'celery'")
        elif dual_writers(messaging, topology) and messaging.celery_broker is None:
            on_both = ["messaging.dual_write"] if messaging.dual_write else []
            on_both += [
                f"messaging.services.{service}.dual_write"
                for service, own in sorted(messaging.services.items())
                if own.dual_write and service in topology.services
            ]
            verb = "writes" if len(on_both) == 1 else "write"
            add(
                ("messaging", "celery_broker"),
                f"required: {', '.join(on_both)} {verb} every event to Kafka and to Celery",
            )
    if messaging.dual_write and messaging.backend == "disabled":
        add(("messaging", "dual_write"), "dual write needs a backend; it is 'disabled'")
    _check_service_messaging(messaging, topology, add)
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


def _check_service_messaging(messaging: MessagingSettings, topology: Topology, add: AddProblem) -> None:
    for service, own in sorted(messaging.services.items()):
        path: KeyPath = ("messaging", "services", service)
        if service not in topology.services:
            add(path, _unknown("service", service, topology.services))
            continue
        if messaging.backend_of(service) != "disabled" or not messaging.dual_write_of(service):
            continue
        if own.dual_write:
            add((*path, "dual_write"), f"dual write needs a backend; service '{service}' has 'disabled'")
        elif own.backend == "disabled":
            add(
                (*path, "backend"),
                "'disabled' leaves dual write (messaging.dual_write: true) nothing to write to; "
                "set dual_write: false here too",
            )


def _check_connection(setting: str, connection: ConnectionSettings, add: AddProblem) -> None:
    path: KeyPath = ("messaging", setting)
    config = f"kafka-platform:{SECRET_URL_CONFIG[setting]}"
    if (connection.url is None) == (not connection.secret):
        add(path, f"give either `url` or `secret: true` (the URL in secret config {config})")
        return
    if connection.url is None:
        return
    parsed = urlsplit(connection.url)
    schemes = URL_SCHEMES[setting]
    if parsed.scheme not in schemes or not parsed.hostname:
        add((*path, "url"), f"'{connection.url}' is not a {' or '.join(s + '://' for s in schemes)} URL")
    elif parsed.password is not None:
        add(
            (*path, "url"),
            "holds a credential in plain text: remove it, run "
            f"`pulumi config set --secret {config} <url>` and set `secret: true`",
        )


def _check_schema_registry(settings: StackSettings, add: AddProblem) -> None:
    registry = settings.schemas.registry
    if registry is None:
        return
    path: KeyPath = ("schemas", "registry")
    provider = settings.kafka.provider
    if provider not in REGISTRY_PROVIDERS:
        add(path, f"only used when provider is {' or '.join(REGISTRY_PROVIDERS)} (provider is '{provider}')")
        return
    parsed = urlsplit(registry.url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        add((*path, "url"), f"'{registry.url}' is not an http:// or https:// URL")
    elif parsed.username is not None or parsed.password is not None:
        add(
            (*path, "url"),
            "holds a credential: set `username` here and the password with "
            f"`pulumi config set --secret kafka-platform:{SCHEMA_REGISTRY_PASSWORD_NAME} <password>`",
        )
    elif parsed.query or parsed.fragment:
        add((*path, "url"), "is the registry's base URL; it takes no query or fragment")
    if registry.username is not None and not registry.username.strip():
        add((*path, "username"), "is empty; leave it out for a registry without authentication")


def _unknown(kind: str, name: str, known: Iterable[str]) -> str:
    names = ", ".join(sorted(known))
    return f"unknown {kind} '{name}'; known: {names}"


def _check_monitoring(settings: StackSettings, add: AddProblem) -> None:
    prometheus = settings.monitoring.prometheus
    if (prometheus.rules or prometheus.dashboard) and settings.kubernetes is None:
        key = "rules" if prometheus.rules else "dashboard"
        add(
            ("monitoring", "prometheus", key),
            "needs a Kubernetes namespace (the stack has `kubernetes: none`)",
        )
    if settings.monitoring.cloudwatch.alarms and settings.kafka.provider != "msk":
        add(
            ("monitoring", "cloudwatch", "alarms"),
            f"CloudWatch publishes consumer lag for MSK only; this stack runs on {settings.kafka.provider} "
            "(use monitoring.prometheus)",
        )
    arn = settings.monitoring.cloudwatch.sns_topic_arn
    if arn is not None and not arn.startswith("arn:aws"):
        add(
            ("monitoring", "cloudwatch", "sns_topic_arn"),
            f"'{arn}' is not an SNS topic ARN (arn:aws:sns:...)",
        )
