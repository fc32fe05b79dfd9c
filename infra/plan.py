"""Resolve topology + stack settings into the concrete plan every renderer consumes.

Pure and Pulumi-free: the CLI, the Pulumi program, the compose renderer and the tests all
read the same `Plan`, so local, preview and prod cannot drift apart.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from infra.errors import ProblemCollector
from infra.names import MAX_PRINCIPAL_LENGTH, env_var_suffix, topic_name_problem
from infra.settings import LocalSettings, StackSettings
from infra.stacks import StackContext
from infra.topology import TOPIC_TRANSPORTS, Topology

ResourceType = Literal["TOPIC", "GROUP", "TRANSACTIONAL_ID", "CLUSTER"]
Operation = Literal["READ", "WRITE", "DESCRIBE", "IDEMPOTENT_WRITE"]

CLUSTER_RESOURCE_NAME = "kafka-cluster"
# The bootstrap endpoint of a cloud cluster exists only after deployment; renderers
# substitute the real value (a Pulumi output) for this token.
BOOTSTRAP_TOKEN = "${cluster.bootstrap}"

SASL_USERNAME_ENV = "KAFKA_SASL_USERNAME"
SASL_PASSWORD_ENV = "KAFKA_SASL_PASSWORD"  # pragma: allowlist secret

_SECURITY = {
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
    pattern_type: Literal["LITERAL", "PREFIXED"] = "LITERAL"  # the plan itself uses LITERAL only
    operation: Operation
    permission: Literal["ALLOW"] = "ALLOW"
    host: Literal["*"] = "*"

    @property
    def sort_key(self) -> tuple[str, str, str, str]:
        return (self.principal, self.resource_type, self.resource_name, self.operation)


class ServicePlan(PlanModel):
    name: str
    principal: str
    deployment: str
    config_map: str
    secret: str | None
    consumer_group: str | None
    transactional_id: str | None
    produces: list[str]
    consumes: list[str]
    env: dict[str, str]
    secret_env: dict[str, str]


class ClusterPlan(PlanModel):
    provider: Literal["confluent", "msk", "local"]
    security_protocol: str
    sasl_mechanism: str | None
    bootstrap: str
    shared_from_stack: str | None
    sizing: dict[str, Any] | None

    def local_settings(self) -> LocalSettings:
        """The local broker's settings (image, ports, listeners) of a local stack."""
        if self.provider != "local":
            raise ValueError(f"a {self.provider} cluster has no local settings")
        return LocalSettings.model_validate(self.sizing or {})


class KubernetesPlan(PlanModel):
    namespace: str
    create_namespace: bool
    restart_deployments: bool
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
    kubernetes: KubernetesPlan
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

    cluster = _plan_cluster(settings, stack)
    services: list[ServicePlan] = []
    acls: list[AclBinding] = []
    for name, spec in sorted(topology.services.items()):
        principal = f"{topology.domain}-{name}-{environment}"
        if len(principal) > MAX_PRINCIPAL_LENGTH:
            collector.add(
                ("environment",),
                f"principal '{principal}' is longer than {MAX_PRINCIPAL_LENGTH} characters",
            )
        group = f"{prefix}{spec.consumer_group or f'{topology.domain}.{name}'}" if spec.consumes else None
        transactional_id = f"{prefix}{topology.domain}.{name}" if spec.transactional else None
        acls.extend(
            _service_acls(
                principal=principal,
                service=name,
                produces=[topics[key].name for key in spec.produces],
                consumes=[topics[key].name for key in spec.consumes],
                group=group,
                transactional_id=transactional_id,
                idempotent=spec.idempotent,
            )
        )
        services.append(
            ServicePlan(
                name=name,
                principal=principal,
                deployment=settings.kubernetes.deployments.get(name, name),
                config_map=f"{name}-kafka-env",
                secret=f"{name}-kafka-credentials" if cluster.sasl_mechanism else None,
                consumer_group=group,
                transactional_id=transactional_id,
                produces=[topics[key].name for key in spec.produces],
                consumes=[topics[key].name for key in spec.consumes],
                env=_service_env(
                    topology=topology,
                    settings=settings,
                    service=name,
                    principal=principal,
                    group=group,
                    transactional_id=transactional_id,
                    topics=topics,
                    cluster=cluster,
                ),
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
        kubernetes=_plan_kubernetes(settings, stack),
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


def _plan_cluster(settings: StackSettings, stack: StackContext) -> ClusterPlan:
    kafka = settings.kafka
    protocol, mechanism = _SECURITY[kafka.provider]
    sizing = {"confluent": kafka.confluent, "msk": kafka.msk, "local": kafka.local_or_default}[kafka.provider]
    bootstrap = BOOTSTRAP_TOKEN
    if kafka.provider == "local":
        bootstrap = kafka.local_or_default.internal_bootstrap
    return ClusterPlan(
        provider=kafka.provider,
        security_protocol=protocol,
        sasl_mechanism=mechanism,
        bootstrap=bootstrap,
        shared_from_stack=settings.preview.base_stack if stack.is_preview else None,
        sizing=None if stack.is_preview or sizing is None else sizing.model_dump(mode="json"),
    )


def _plan_kubernetes(settings: StackSettings, stack: StackContext) -> KubernetesPlan:
    kubernetes = settings.kubernetes
    local = settings.kafka.provider == "local"
    return KubernetesPlan(
        namespace=f"{kubernetes.namespace}-pr-{stack.pr}" if stack.is_preview else kubernetes.namespace,
        create_namespace=kubernetes.create_namespace or stack.is_preview,
        # Rendered manifests have no live Deployment to patch.
        restart_deployments=kubernetes.restart_deployments and not local,
        render_to_directory=settings.kafka.local_or_default.manifests_dir if local else None,
    )


def _service_acls(
    *,
    principal: str,
    service: str,
    produces: list[str],
    consumes: list[str],
    group: str | None,
    transactional_id: str | None,
    idempotent: bool,
) -> list[AclBinding]:
    """Exactly what the declared paths need (Kafka's documented ACL requirements)."""
    grants: list[tuple[ResourceType, str, Operation]] = []
    for topic in produces:
        grants += [("TOPIC", topic, "WRITE"), ("TOPIC", topic, "DESCRIBE")]
    for topic in consumes:
        grants += [("TOPIC", topic, "READ"), ("TOPIC", topic, "DESCRIBE")]
    if group is not None:
        grants.append(("GROUP", group, "READ"))
    if transactional_id is not None:
        grants += [
            ("TRANSACTIONAL_ID", transactional_id, "WRITE"),
            ("TRANSACTIONAL_ID", transactional_id, "DESCRIBE"),
        ]
    if idempotent:
        grants.append(("CLUSTER", CLUSTER_RESOURCE_NAME, "IDEMPOTENT_WRITE"))
    return [
        AclBinding(
            principal=principal,
            service=service,
            resource_type=resource_type,
            resource_name=name,
            operation=operation,
        )
        for resource_type, name, operation in grants
    ]


def _service_env(
    *,
    topology: Topology,
    settings: StackSettings,
    service: str,
    principal: str,
    group: str | None,
    transactional_id: str | None,
    topics: dict[str, PlannedTopic],
    cluster: ClusterPlan,
) -> dict[str, str]:
    spec = topology.services[service]
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
        "KAFKA_CLIENT_ID": principal,
    }
    if cluster.sasl_mechanism:
        env["KAFKA_SASL_MECHANISM"] = cluster.sasl_mechanism
    if group is not None:
        env["KAFKA_CONSUMER_GROUP"] = group
    if transactional_id is not None:
        env["KAFKA_TRANSACTIONAL_ID"] = transactional_id
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
    if cluster.sasl_mechanism is None:
        return {}
    identity = {"confluent": "API key id", "msk": "SCRAM user", "local": "SCRAM user"}
    secret = {"confluent": "API key secret", "msk": "SCRAM password", "local": "SCRAM password"}
    return {
        SASL_USERNAME_ENV: identity[cluster.provider],
        SASL_PASSWORD_ENV: secret[cluster.provider],
    }
