"""The resolved plan: final names, grants and env of one stack, as every renderer reads them.

`infra.plan.resolve.resolve_plan` builds it from topology.yaml and the stack's settings; the Pulumi
program, the compose renderer and the CLI only read it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from infra.model.cluster_connection import ExistingClusterSettings
from infra.model.migration_settings import ClusterSide
from infra.model.names import generation_principal, principal_name
from infra.model.settings import (
    AclMode,
    ConfluentSettings,
    LocalSettings,
    MskSettings,
    Provider,
)

ResourceType = Literal["TOPIC", "GROUP", "TRANSACTIONAL_ID", "CLUSTER"]
Operation = Literal["READ", "WRITE", "CREATE", "DELETE", "DESCRIBE", "IDEMPOTENT_WRITE"]
PatternType = Literal["LITERAL", "PREFIXED"]

CLUSTER_RESOURCE_NAME = "kafka-cluster"
# The bootstrap endpoint of a cloud cluster exists only after deployment; renderers
# substitute the real value (a Pulumi output) for this token.
BOOTSTRAP_TOKEN = "${cluster.bootstrap}"
# Likewise a Confluent environment's Schema Registry endpoint (its `rest_endpoint`).
REGISTRY_ENDPOINT_TOKEN = "${schema_registry.rest_endpoint}"
# The stack output naming the stack's registry (its `url`, or the Confluent endpoint).
SCHEMA_REGISTRY_OUTPUT = "schema_registry"

# A Confluent cluster's Kafka resources are named under this CRN; the program substitutes the
# cluster's `rbac_crn` and id. Role bindings name one resource below it.
KAFKA_CRN_TOKEN = "${cluster.rbac_crn}/kafka=${cluster.id}"
RbacRole = Literal["DeveloperRead", "DeveloperWrite", "ResourceOwner"]
RbacResourceType = Literal["topic", "group", "transactional-id"]

SASL_USERNAME_ENV = "KAFKA_SASL_USERNAME"
SASL_PASSWORD_ENV = "KAFKA_SASL_PASSWORD"  # pragma: allowlist secret


class PlanModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PlannedTopic(PlanModel):
    key: str
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]
    message_key: str | None = None
    description: str | None = None


class Principal(PlanModel):
    service: str
    name: str


class AclBinding(PlanModel):
    principal: str
    service: str
    resource_type: ResourceType
    resource_name: str
    pattern_type: PatternType = "LITERAL"
    operation: Operation
    permission: Literal["ALLOW"] = "ALLOW"
    host: Literal["*"] = "*"

    @property
    def sort_key(self) -> tuple[str, str, str, str, str]:
        return (self.principal, self.resource_type, self.resource_name, self.pattern_type, self.operation)

    @property
    def adoption_id(self) -> str:
        """How settings.adopt.acls names it: ``api WRITE TOPIC aura360.user.events``."""
        star = "*" if self.pattern_type == "PREFIXED" else ""
        return f"{self.service} {self.operation} {self.resource_type} {self.resource_name}{star}"

    @property
    def logical_name(self) -> str:
        """A stable Pulumi name: the binding itself, so reordering never replaces an ACL."""
        parts = ["acl", self.service, self.resource_type.lower(), self.resource_name, self.operation.lower()]
        if self.pattern_type == "PREFIXED":
            parts.insert(3, "prefixed")
        return "-".join(parts)


# What a service may do, before it names a principal: (resource type, name, pattern, operation).
GrantSpec = tuple[ResourceType, str, PatternType, Operation]


def bindings_of(principal: str, service: str, grants: Iterable[GrantSpec]) -> list[AclBinding]:
    """The ACLs that give ``principal`` (``service``'s) these grants, in their order."""
    return [
        AclBinding(
            principal=principal,
            service=service,
            resource_type=resource_type,
            resource_name=name,
            pattern_type=pattern,
            operation=operation,
        )
        for resource_type, name, pattern, operation in grants
    ]


class RoleBinding(PlanModel):
    """A Confluent Cloud role binding of a service (acls.mode rbac), in place of its ACLs."""

    principal: str
    service: str
    role: RbacRole
    resource_type: RbacResourceType
    resource_name: str
    pattern_type: PatternType
    crn_pattern: str  # under KAFKA_CRN_TOKEN; a PREFIXED binding ends in "*"

    @classmethod
    def of(cls, acl: AclBinding, role: RbacRole, resource_type: RbacResourceType) -> RoleBinding:
        """The binding of ``role`` on the resource ``acl`` names (``resource_type``: Confluent's name)."""
        principal, service = acl.principal, acl.service
        resource_name, pattern_type = acl.resource_name, acl.pattern_type
        wildcard = "*" if pattern_type == "PREFIXED" else ""
        return cls(
            principal=principal,
            service=service,
            role=role,
            resource_type=resource_type,
            resource_name=resource_name,
            pattern_type=pattern_type,
            crn_pattern=f"{KAFKA_CRN_TOKEN}/{resource_type}={resource_name}{wildcard}",
        )

    @property
    def sort_key(self) -> tuple[str, str, str, str, str]:
        return (self.principal, self.resource_type, self.resource_name, self.pattern_type, self.role)

    @property
    def logical_name(self) -> str:
        parts = ["rb", self.service, self.role.lower(), self.resource_type, self.resource_name]
        if self.pattern_type == "PREFIXED":
            parts.insert(4, "prefixed")
        return "-".join(parts)


class ConnectionPlan(PlanModel):
    """Redis or the Celery broker: a plain URL (ConfigMap), or the secret config that holds
    it (Secret)."""

    url: str | None = None
    secret_config: str | None = None
    host_url: str | None = None  # local: the address host processes use


class ServicePlan(PlanModel):
    name: str
    # The cluster its env points at: "source" while a migration has not moved it (settings.migration).
    cluster: ClusterSide
    principal: str
    # The Deployment whose pods roll when this service's env or credential changes; None: no rollout.
    rollout_deployment: str | None
    config_map: str
    secret: str | None
    consumer_group: str | None
    consumer_group_prefix: str | None
    transactional_id_prefix: str | None
    produces: list[str]
    consumes: list[str]
    env: dict[str, str]
    secret_env: dict[str, str]


class ConsumerWatch(PlanModel):
    """One (service, consumer group, topic) whose lag is watched, with its thresholds."""

    service: str
    group: str  # the group, or with group_is_prefix the prefix of its groups
    group_is_prefix: bool
    topic: str
    lag_messages: int | None
    lag_seconds: int | None
    for_seconds: int

    @property
    def group_pattern(self) -> str:
        """A regular expression for the group label (Prometheus matches it whole)."""
        escaped = re.escape(self.group)
        return f"{escaped}.*" if self.group_is_prefix else escaped


class MonitoringPlan(PlanModel):
    """What the stack renders from its watches (settings.monitoring)."""

    # Where lag metrics come from: kafka_exporter (kafka, msk, local), Confluent's metrics export.
    metrics_source: Literal["kafka_exporter", "confluent"]
    prometheus_rules: bool
    rule_labels: dict[str, str]
    grafana_dashboard: bool
    cloudwatch_alarms: bool  # MSK
    sns_topic_arn: str | None  # None with cloudwatch_alarms: the stack creates a topic
    redis_rule: bool  # the stack routes events to Redis


class ClusterPlan(PlanModel):
    provider: Provider
    security_protocol: str
    sasl_mechanism: str | None
    bootstrap: str
    shared_from_stack: str | None
    # The provider's own settings section (None in a preview, which reuses its base stack's cluster).
    provider_settings: ConfluentSettings | MskSettings | ExistingClusterSettings | LocalSettings | None
    # The identity the platform creates to manage topics and ACLs (Confluent, MSK); None where
    # the admin is given (existing clusters) or borrowed (previews, local).
    admin_principal: str | None

    def local_settings(self) -> LocalSettings:
        """The local broker's settings (image, ports, listeners) of a local stack."""
        if not isinstance(self.provider_settings, LocalSettings):
            raise ValueError(f"a {self.provider} cluster has no local settings")
        return self.provider_settings


class KubernetesPlan(PlanModel):
    namespace: str
    create_namespace: bool
    render_to_directory: str | None
    rollout_wait_seconds: int | None  # None: a rollout patch does not wait for ready pods


class ProtectionPlan(PlanModel):
    protect: bool
    retain_on_delete: bool
    allowed_topic_deletes: list[str]
    allowed_service_deletes: list[str]


class CredentialPlan(PlanModel):
    """Which generation of service credentials the stack wants (settings.credentials.rotation).
    On SCRAM clusters (msk, kafka) each generation is its own user, `<principal>-g<N>`."""

    generation: int
    overlap_ms: int
    scram_users: bool  # a generation is a user of its own; Confluent rotates API keys instead


class AdoptionPlan(PlanModel):
    """What the next deployment imports instead of creating (none in pr-<n> previews)."""

    topics: list[str] = []
    acls: list[str] = []  # AclBinding.adoption_id
    users: list[str] = []  # SCRAM users' names
    service_accounts: dict[str, str] = {}


class SubjectPlan(PlanModel):
    """One Schema Registry subject: the schema its events' producers write and consumers read."""

    subject: str
    format: str  # AVRO
    definition: str  # the schema, JSON with sorted keys
    schema_file: str
    record_name: str
    topic: str
    events: list[str]
    compatibility: str
    producers: list[str]
    consumers: list[str]


SCHEMA_REGISTRY_URL_ENV = "SCHEMA_REGISTRY_URL"
SCHEMA_REGISTRY_USERNAME_ENV = "SCHEMA_REGISTRY_USERNAME"
SCHEMA_REGISTRY_PASSWORD_ENV = "SCHEMA_REGISTRY_PASSWORD"  # pragma: allowlist secret
# Redpanda's built-in registry inside the compose network (its default port); on the host it is
# at kafka.local.schema_registry_port.
LOCAL_REGISTRY_URL = "http://redpanda:8081"
# Where Apicurio Registry serves the Confluent-compatible API (the Java path's registry).
APICURIO_CCOMPAT_PATH = "/apis/ccompat/v7"


class SchemaRegistryPlan(PlanModel):
    """Where the stack's subjects are registered (settings.schemas.registry; on a local stack,
    the registry `local up` runs beside the broker)."""

    url: str
    # local: the address processes on the host use (Redpanda's registry; the Java path's Apicurio
    # serves the same API under APICURIO_CCOMPAT_PATH on this address)
    host_url: str | None = None
    username: str | None
    password_config: str | None  # the secret config key holding the password
    # Subjects that exist in the registry and that this stack takes over (settings.adopt.subjects).
    adopt: list[str] = []


# MirrorMaker 2's Connect worker topics (dedicated mode), "<internal prefix>.<role>" on the target.
CONNECT_INTERNAL_TOPICS = ("configs", "offsets", "status")


class MirrorSide(PlanModel):
    """One cluster of the pair, as MirrorMaker 2 reaches it."""

    alias: Literal["source", "target"]
    bootstrap: str  # target: the plan's cluster bootstrap (may be BOOTSTRAP_TOKEN)
    security_protocol: str
    sasl_mechanism: str | None  # None: a PLAINTEXT local target
    principal: str  # "<domain>.<stack>.platform-mirror", the same name on both sides
    acls: list[AclBinding]  # exactly the grants MirrorMaker 2 needs on this side


class MirroredGroup(PlanModel):
    """A consumer group whose offsets MirrorMaker 2 translates: a name, or every group under a prefix."""

    name: str
    prefix: bool


class MigrationPlan(PlanModel):
    source: MirrorSide
    target: MirrorSide
    source_settings: ExistingClusterSettings  # the admin connection for the source
    service_sides: dict[str, ClusterSide]  # every service
    topics: list[str]  # mirrored topic names: every plan topic, same name (identity policy)
    groups: list[str]  # the synced groups' names ("<prefix>*" not used: see group_patterns)
    group_prefixes: list[str]  # groups synced by prefix (per-instance consumers, sink connectors)
    sync_interval_seconds: int
    keep_seconds: int
    image: str
    internal_prefix: str  # the Connect worker's group and its config/offset/status topics' prefix
    # MirrorMaker's and its Connect worker's own topics on the target: -1 takes the broker's
    # default; Confluent Cloud wants its fixed 3 (infra/plan/migration.py).
    internal_replication: int
    adopt_users: list[str]  # services' users that exist on the source and are taken over

    @property
    def connect_topics(self) -> dict[str, str]:
        return {role: f"{self.internal_prefix}.{role}" for role in CONNECT_INTERNAL_TOPICS}

    def services_on(self, side: ClusterSide) -> list[str]:
        return sorted(service for service, where in self.service_sides.items() if where == side)


class Plan(PlanModel):
    stack: str
    environment: str
    production: bool
    domain: str
    name_prefix: str
    cluster: ClusterPlan
    kubernetes: KubernetesPlan | None  # None: `kubernetes: none`, env goes to stack outputs
    messaging_backend: str
    dual_write: bool
    redis: ConnectionPlan | None
    celery_broker: ConnectionPlan | None
    protection: ProtectionPlan
    topics: list[PlannedTopic]
    principals: list[Principal]
    # How services are granted access (settings.acls.mode): ACLs (literal, prefixed) or role bindings.
    access_mode: AclMode
    acls: list[AclBinding]
    role_bindings: list[RoleBinding]
    services: list[ServicePlan]
    adoption: AdoptionPlan
    credentials: CredentialPlan
    consumers: list[ConsumerWatch]
    monitoring: MonitoringPlan
    subjects: list[SubjectPlan] = Field(default_factory=list)
    schema_registry: SchemaRegistryPlan | None = None
    # settings.migration (None: not migrating, every service on the stack's cluster).
    migration: MigrationPlan | None = None
    # What validate reports without failing, as "<file>: <key path>: <message>".
    warnings: list[str]

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"

    def topic(self, key: str) -> PlannedTopic:
        return next(topic for topic in self.topics if topic.key == key)

    def service(self, name: str) -> ServicePlan:
        return next(service for service in self.services if service.name == name)

    def principal_at(self, service: str, generation: int) -> str:
        """A service's principal at a credential generation: on SCRAM clusters each generation
        is a user of its own (`<principal>-g<N>` after the first); Confluent keeps the account."""
        principal = principal_name(self.domain, self.stack, service)
        return generation_principal(principal, generation) if self.credentials.scram_users else principal
