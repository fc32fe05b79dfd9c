"""Resolve topology + stack settings into the concrete plan every renderer consumes.

Pure and Pulumi-free: the CLI, the Pulumi program, the compose renderer and the tests all
read the same `Plan`, so local, preview and prod cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from infra.errors import ProblemCollector
from infra.names import (
    LONGEST_PR_STACK,
    MAX_CONFLUENT_DISPLAY_NAME,
    PLATFORM_ADMIN,
    env_var_suffix,
    principal_name,
    topic_name_problem,
)
from infra.settings import (
    ConfluentSettings,
    ExistingClusterSettings,
    LocalSettings,
    MskSettings,
    Provider,
    StackSettings,
)
from infra.stacks import StackContext, load_project
from infra.topology import TOPIC_TRANSPORTS, Topology

ResourceType = Literal["TOPIC", "GROUP", "TRANSACTIONAL_ID", "CLUSTER"]
Operation = Literal["READ", "WRITE", "DESCRIBE", "IDEMPOTENT_WRITE"]
PatternType = Literal["LITERAL", "PREFIXED"]

CLUSTER_RESOURCE_NAME = "kafka-cluster"
# The bootstrap endpoint of a cloud cluster exists only after deployment; renderers
# substitute the real value (a Pulumi output) for this token.
BOOTSTRAP_TOKEN = "${cluster.bootstrap}"

SASL_USERNAME_ENV = "KAFKA_SASL_USERNAME"
SASL_PASSWORD_ENV = "KAFKA_SASL_PASSWORD"  # pragma: allowlist secret

_SECURITY: dict[str, tuple[str, str | None]] = {
    "confluent": ("SASL_SSL", "PLAIN"),
    "msk": ("SASL_SSL", "SCRAM-SHA-512"),
    "local": ("PLAINTEXT", None),
}


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
    def logical_name(self) -> str:
        """A stable Pulumi name: the binding itself, so reordering never replaces an ACL."""
        parts = ["acl", self.service, self.resource_type.lower(), self.resource_name, self.operation.lower()]
        if self.pattern_type == "PREFIXED":
            parts.insert(3, "prefixed")
        return "-".join(parts)


class ServicePlan(PlanModel):
    name: str
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


class ProtectionPlan(PlanModel):
    protect: bool
    retain_on_delete: bool
    allowed_topic_deletes: list[str]
    allowed_service_deletes: list[str]


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
    protection: ProtectionPlan
    topics: list[PlannedTopic]
    principals: list[Principal]
    acls: list[AclBinding]
    services: list[ServicePlan]

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"

    def topic(self, key: str) -> PlannedTopic:
        return next(topic for topic in self.topics if topic.key == key)

    def service(self, name: str) -> ServicePlan:
        return next(service for service in self.services if service.name == name)


def load_plan(project_dir: Path, stack: str) -> Plan:
    """The plan of one stack, from topology.yaml and its Pulumi.<stack>.yaml (or a path to one)."""
    topology, context = load_project(project_dir, stack)
    return resolve_plan(topology, context)


def resolve_plan(topology: Topology, stack: StackContext) -> Plan:
    """The plan for one stack. Raises ConfigError for problems only visible per stack."""
    settings = stack.settings
    prefix = f"pr-{stack.pr}." if stack.pr is not None else ""
    environment = stack.name if stack.is_preview else settings.environment
    collector = ProblemCollector(stack.file, prefix=("settings",))

    topics = {key: _plan_topic(topology, settings, key, prefix, stack) for key in topology.topics}
    for key, topic in topics.items():
        if problem := topic_name_problem(topic.name):
            collector.add(("topics", key), f"in stack '{stack.name}' the topic name {problem}")

    cluster = _plan_cluster(topology, settings, stack)
    _check_display_names(topology, stack, collector)
    kubernetes = _plan_kubernetes(settings, stack)
    rollouts = _rollout_deployments(settings, stack)
    services: list[ServicePlan] = []
    acls: list[AclBinding] = []
    for name, spec in sorted(topology.services.items()):
        names = _service_names(topology, stack, name, prefix, topics)
        acls.extend(
            _service_acls(names, idempotent_write=spec.idempotent and _needs_idempotent_write_acl(settings))
        )
        services.append(
            ServicePlan(
                name=name,
                principal=names.principal,
                rollout_deployment=rollouts.get(name),
                config_map=f"{name}-kafka-env",
                secret=f"{name}-kafka-credentials" if cluster.sasl_mechanism else None,
                consumer_group=names.group,
                consumer_group_prefix=names.group_prefix,
                transactional_id_prefix=names.transactional_prefix,
                produces=names.produces,
                consumes=names.consumes,
                env=_service_env(topology, settings, names, topics, cluster),
                secret_env=_secret_env(cluster),
            )
        )
    collector.raise_if_any()

    protected = settings.protected and not stack.is_preview
    return Plan(
        stack=stack.name,
        environment=environment,
        production=settings.production,
        domain=topology.domain,
        name_prefix=prefix,
        cluster=cluster,
        kubernetes=kubernetes,
        messaging_backend=settings.messaging.backend,
        dual_write=settings.messaging.dual_write,
        protection=ProtectionPlan(
            protect=protected,
            retain_on_delete=protected,
            allowed_topic_deletes=sorted(settings.protection.allow_deletes.topics),
            allowed_service_deletes=sorted(settings.protection.allow_deletes.services),
        ),
        topics=sorted(topics.values(), key=lambda topic: topic.name),
        principals=[Principal(service=s.name, name=s.principal) for s in services],
        acls=sorted(set(acls), key=lambda acl: acl.sort_key),
        services=services,
    )


def _plan_topic(
    topology: Topology, settings: StackSettings, key: str, prefix: str, stack: StackContext
) -> PlannedTopic:
    spec = topology.topics[key]
    defaults = settings.topics.defaults
    override = settings.topics.overrides.get(key)

    def pick(field: str, *candidates: Any) -> Any:
        for candidate in candidates:
            if candidate is not None:
                return candidate
        return getattr(defaults, field)

    partitions = pick("partitions", override and override.partitions, spec.partitions)
    caps = [defaults.max_partitions, settings.preview.max_partitions if stack.is_preview else None]
    for cap in caps:
        if cap is not None:
            partitions = min(partitions, cap)
    replication = pick("replication", override and override.replication)
    min_isr = pick("min_insync_replicas", override and override.min_insync_replicas)
    retention = pick("retention", override and override.retention, spec.retention)

    config: dict[str, str] = {"cleanup.policy": spec.cleanup}
    if "delete" in spec.cleanup:
        config["retention.ms"] = str(retention)
    if replication > 1:  # with a single replica min.insync.replicas has no meaning
        config["min.insync.replicas"] = str(min(min_isr, replication))
    config.update(spec.config)
    if override is not None:
        config.update(override.config)
    return PlannedTopic(
        key=key,
        name=topology.topic_name(key, prefix),
        partitions=partitions,
        replication_factor=replication,
        config=dict(sorted(config.items())),
        message_key=spec.key,
        description=spec.description,
    )


def _plan_cluster(topology: Topology, settings: StackSettings, stack: StackContext) -> ClusterPlan:
    kafka = settings.kafka
    provider_settings = kafka.local_or_default if kafka.provider == "local" else kafka.provider_settings
    bootstrap = BOOTSTRAP_TOKEN
    protocol, mechanism = _SECURITY.get(kafka.provider, ("", None))
    if isinstance(provider_settings, ExistingClusterSettings):
        protocol, mechanism = provider_settings.security_protocol, provider_settings.sasl_mechanism
        bootstrap = ",".join(provider_settings.bootstrap_servers)
    if isinstance(provider_settings, LocalSettings):
        bootstrap = provider_settings.internal_bootstrap
    # A Confluent preview reuses its base stack's cluster and admin; an existing cluster is
    # simply named again by the preview's settings (MSK previews are refused).
    shared = stack.is_preview and kafka.provider == "confluent"
    owns_admin = kafka.provider in {"confluent", "msk"} and not shared
    return ClusterPlan(
        provider=kafka.provider,
        security_protocol=protocol,
        sasl_mechanism=mechanism,
        bootstrap=bootstrap,
        shared_from_stack=settings.preview.base_stack if shared else None,
        provider_settings=None if shared else provider_settings,
        admin_principal=principal_name(topology.domain, stack.name, PLATFORM_ADMIN) if owns_admin else None,
    )


def _needs_idempotent_write_acl(settings: StackSettings) -> bool:
    """Only brokers older than Kafka 2.8 (KIP-679) want IDEMPOTENT_WRITE for idempotent producers."""
    provider = settings.kafka.provider_settings
    return isinstance(provider, MskSettings | ExistingClusterSettings) and provider.needs_idempotent_write_acl


def _check_display_names(topology: Topology, stack: StackContext, collector: ProblemCollector) -> None:
    """Confluent service-account display names (services and the admin) fit in 64 characters,
    here and in every pr-<n> preview this stack is the base of."""
    settings = stack.settings
    if settings.kafka.provider != "confluent":
        return
    stacks = [stack.name]
    if settings.preview.base_stack == stack.name and not stack.is_preview:
        stacks.append(LONGEST_PR_STACK)
    for stack_name in stacks:
        for service in sorted({*topology.services, PLATFORM_ADMIN}):
            name = principal_name(topology.domain, stack_name, service)
            if len(name) > MAX_CONFLUENT_DISPLAY_NAME:
                where = "" if stack_name == stack.name else f" (in preview stack {stack_name})"
                collector.add(
                    ("kafka", "confluent"),
                    f"service account '{name}'{where} is {len(name)} characters; Confluent Cloud "
                    f"allows {MAX_CONFLUENT_DISPLAY_NAME}: shorten the domain, the service or the stack name",
                )
                return


def _plan_kubernetes(settings: StackSettings, stack: StackContext) -> KubernetesPlan | None:
    kubernetes = settings.kubernetes
    if kubernetes is None:
        return None
    local = settings.kafka.provider == "local"
    return KubernetesPlan(
        namespace=f"{kubernetes.namespace}-pr-{stack.pr}" if stack.is_preview else kubernetes.namespace,
        create_namespace=kubernetes.create_namespace or stack.is_preview,
        render_to_directory=settings.kafka.local_or_default.manifests_dir if local else None,
    )


def _rollout_deployments(settings: StackSettings, stack: StackContext) -> dict[str, str]:
    """Only Deployments the settings name; none in a preview unless asked, none when rendering."""
    kubernetes = settings.kubernetes
    if kubernetes is None or settings.kafka.provider == "local":
        return {}
    if stack.is_preview and not settings.preview.rollouts:
        return {}
    return dict(kubernetes.deployments)


@dataclass(frozen=True)
class _ServiceNames:
    """One service's final names in one stack: what its grants and its env are made of."""

    service: str
    principal: str
    group: str | None  # the group it joins, or None per instance / when it consumes nothing
    group_prefix: str | None  # per instance: every group under this prefix
    transactional_prefix: str | None
    produces: list[str]
    consumes: list[str]


def _service_names(
    topology: Topology, stack: StackContext, service: str, prefix: str, topics: dict[str, PlannedTopic]
) -> _ServiceNames:
    spec = topology.services[service]
    stem = f"{prefix}{topology.consumer_group(service)}" if spec.consumes else None
    return _ServiceNames(
        service=service,
        principal=principal_name(topology.domain, stack.name, service),
        group=stem if stem and not spec.consumer_group_per_instance else None,
        group_prefix=f"{stem}." if stem and spec.consumer_group_per_instance else None,
        transactional_prefix=f"{prefix}{topology.domain}.{service}." if spec.transactional else None,
        produces=[topics[key].name for key in spec.produces],
        consumes=[topics[key].name for key in spec.consumes],
    )


def _service_acls(names: _ServiceNames, *, idempotent_write: bool) -> list[AclBinding]:
    """Exactly what the declared paths need. READ and WRITE imply DESCRIBE on the same resource
    (Kafka's authorizer, Redpanda's too), so DESCRIBE is never granted on its own."""
    grants: list[tuple[ResourceType, str, PatternType, Operation]] = []
    grants += [("TOPIC", topic, "LITERAL", "WRITE") for topic in names.produces]
    grants += [("TOPIC", topic, "LITERAL", "READ") for topic in names.consumes]
    if names.group is not None:
        grants.append(("GROUP", names.group, "LITERAL", "READ"))
    if names.group_prefix is not None:
        grants.append(("GROUP", names.group_prefix, "PREFIXED", "READ"))
    if names.transactional_prefix is not None:
        grants.append(("TRANSACTIONAL_ID", names.transactional_prefix, "PREFIXED", "WRITE"))
    if idempotent_write:
        grants.append(("CLUSTER", CLUSTER_RESOURCE_NAME, "LITERAL", "IDEMPOTENT_WRITE"))
    return [
        AclBinding(
            principal=names.principal,
            service=names.service,
            resource_type=resource_type,
            resource_name=name,
            pattern_type=pattern,
            operation=operation,
        )
        for resource_type, name, pattern, operation in grants
    ]


def _service_env(
    topology: Topology,
    settings: StackSettings,
    names: _ServiceNames,
    topics: dict[str, PlannedTopic],
    cluster: ClusterPlan,
) -> dict[str, str]:
    spec = topology.services[names.service]
    messaging = settings.messaging
    env = {
        "MESSAGING_BACKEND": messaging.backend,
        "MESSAGING_DUAL_WRITE": "true" if messaging.dual_write else "false",
        "MESSAGING_ROUTING": json.dumps(
            _routing_for(topology, settings, spec.produces, topics),
            sort_keys=True,
            separators=(",", ":"),
        ),
        "KAFKA_BROKER_URL": cluster.bootstrap,
        "KAFKA_SECURITY_PROTOCOL": cluster.security_protocol,
        "KAFKA_CLIENT_ID": names.principal,
    }
    if cluster.sasl_mechanism:
        env["KAFKA_SASL_MECHANISM"] = cluster.sasl_mechanism
    if names.group is not None:
        env["KAFKA_CONSUMER_GROUP"] = names.group
    if names.group_prefix is not None:
        env["KAFKA_CONSUMER_GROUP_PREFIX"] = names.group_prefix
    if names.transactional_prefix is not None:
        env["KAFKA_TRANSACTIONAL_ID_PREFIX"] = names.transactional_prefix
    if spec.idempotent or spec.transactional:
        env["KAFKA_ENABLE_IDEMPOTENCE"] = "true"
    if spec.produces:
        env["KAFKA_PRODUCE_TOPICS"] = ",".join(topics[key].name for key in spec.produces)
    if spec.consumes:
        env["KAFKA_CONSUME_TOPICS"] = ",".join(topics[key].name for key in spec.consumes)
    for key in {*spec.produces, *spec.consumes}:
        env[f"KAFKA_TOPIC_{env_var_suffix(key)}"] = topics[key].name
    return dict(sorted(env.items()))


def _routing_for(
    topology: Topology,
    settings: StackSettings,
    produces: list[str],
    topics: dict[str, PlannedTopic],
) -> dict[str, dict[str, str]]:
    """The events this service may publish: those on its own topics, plus the non-Kafka ones."""
    routing: dict[str, dict[str, str]] = {}
    for name, event in sorted(topology.events.items()):
        if event.topic is not None and event.topic not in produces:
            continue
        transport: str = settings.messaging.routing.get(name, event.transport)
        route: dict[str, str] = {"transport": transport}
        if event.topic is not None and transport in TOPIC_TRANSPORTS:
            route["topic"] = topics[event.topic].name
            if event.key is not None:
                route["key"] = event.key
        if event.channel is not None and transport in {"redis", "both"}:
            route["channel"] = event.channel
        routing[name] = route
    return routing


def _secret_env(cluster: ClusterPlan) -> dict[str, str]:
    """What each Secret value is (shown by `plan` and `env`), never the value itself."""
    if cluster.sasl_mechanism is None:
        return {}
    kind = "API key" if cluster.provider == "confluent" else "SCRAM"
    username, password = ("id", "secret") if cluster.provider == "confluent" else ("user", "password")
    return {SASL_USERNAME_ENV: f"{kind} {username}", SASL_PASSWORD_ENV: f"{kind} {password}"}
