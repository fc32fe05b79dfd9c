"""Resolve topology + stack settings into the concrete plan every renderer consumes.

Pure and Pulumi-free: the CLI, the Pulumi program, the compose renderer and the tests all
read the same `Plan`, so local, preview and prod cannot drift apart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from infra.model.cluster_connection import ExistingClusterSettings
from infra.model.errors import ConfigError, Problem, ProblemCollector
from infra.model.event_schemas import EventSchema, files_in, load_event_schemas
from infra.model.kafka_topic_configs import CONFLUENT_EDITABLE_TOPIC_CONFIGS
from infra.model.migration_settings import ClusterSide, service_sides
from infra.model.names import (
    LONGEST_PR_STACK,
    MAX_CONFLUENT_DISPLAY_NAME,
    PLATFORM_ADMIN,
    PLATFORM_MIRROR,
    env_var_suffix,
    generation_principal,
    principal_name,
    topic_name_problem,
)
from infra.model.settings import LocalSettings, MskSettings, StackSettings
from infra.model.stacks import TOPOLOGY_FILE, StackContext, load_project
from infra.model.topology import TOPIC_TRANSPORTS, TopicSpec, Topology
from infra.plan.consumer_watches import consumer_watches, monitoring_plan
from infra.plan.messaging_connections import REDIS_URL_ENV, connection_env, plan_connections
from infra.plan.migration import plan_migration, source_cluster
from infra.plan.model import (
    BOOTSTRAP_TOKEN,
    CLUSTER_RESOURCE_NAME,
    SASL_PASSWORD_ENV,
    SASL_USERNAME_ENV,
    AclBinding,
    AdoptionPlan,
    ClusterPlan,
    CredentialPlan,
    GrantSpec,
    KubernetesPlan,
    MigrationPlan,
    MirroredGroup,
    Operation,
    Plan,
    PlannedTopic,
    Principal,
    ProtectionPlan,
    ServicePlan,
    bindings_of,
)
from infra.plan.schema_subjects import plan_registry, plan_subjects, registry_env, unregistered_subjects
from infra.plan.service_access import LiteralGrants, budget_problems, grant_access

STREAMS_INTERNAL_TOPIC_OPERATIONS: tuple[Operation, ...] = ("CREATE", "READ", "WRITE", "DELETE")
# Kafka Connect names a sink connector's consumer group "connect-<connector name>".
CONNECT_SINK_GROUP_PREFIX = "connect-"
KAFKA_PARTITIONER = "murmur2_random"


_SECURITY: dict[str, tuple[str, str | None]] = {
    "confluent": ("SASL_SSL", "PLAIN"),
    "msk": ("SASL_SSL", "SCRAM-SHA-512"),
    "local": ("PLAINTEXT", None),
}


def load_plan(project_dir: Path, stack: str) -> Plan:
    """The plan of one stack, from topology.yaml and its Pulumi.<stack>.yaml (or a path to one)."""
    topology, context = load_project(project_dir, stack)
    schema_problems: list[Problem] = []
    try:
        schemas = load_event_schemas(topology, files_in(project_dir))
    except ConfigError as error:  # reported with the plan's own problems, in one run
        schema_problems, schemas = error.problems, {}
    try:
        plan = resolve_plan(topology, context, schemas)
    except ConfigError as error:
        raise ConfigError([*schema_problems, *error.problems]) from None
    if schema_problems:
        raise ConfigError(schema_problems)
    return plan


def resolve_plan(
    topology: Topology, stack: StackContext, event_schemas: Mapping[str, EventSchema] | None = None
) -> Plan:
    """The plan for one stack. Raises ConfigError for problems only visible per stack.
    ``event_schemas``: the parsed files the topology's events name (`load_event_schemas`)."""
    if event_schemas is None and any(event.schema_file for event in topology.events.values()):
        raise ValueError("the topology names event schemas: resolve_plan needs them loaded")
    settings = stack.settings
    prefix = stack.name_prefix
    environment = stack.name if stack.is_preview else settings.environment
    collector = ProblemCollector(stack.file, prefix=("settings",))

    topics = {
        key: _plan_topic(topology, settings, key, spec, prefix=prefix, stack=stack)
        for key, spec in topology.all_topics.items()
    }
    for key, topic in topics.items():
        if problem := topic_name_problem(topic.name):
            collector.add(("topics", key), f"in stack '{stack.name}' the topic name {problem}")

    cluster = _plan_cluster(topology, settings, stack)
    _check_display_names(topology, stack, collector)
    topology_problems = _confluent_topic_config_problems(topology, stack, collector)
    kubernetes = _plan_kubernetes(settings, stack)
    rollouts = _rollout_deployments(settings, stack)
    services: list[ServicePlan] = []
    acls: list[AclBinding] = []
    redis, celery = plan_connections(settings, topology)
    credentials = _plan_credentials(settings, stack)
    subjects, subject_problems = plan_subjects(
        topology, settings, event_schemas or {}, topics, stack_file=stack.file, name_prefix=prefix
    )
    registry, registry_problems = plan_registry(stack, subjects, topology.subject_name_strategy)
    topology_problems += [problem for found in subject_problems for problem in found.problems]
    needs_idempotent_write = _needs_idempotent_write_acl(settings)
    celery_queues = _celery_queues(topology, stack, topics)
    # A pr-<n> preview copies dev's settings but has topics of its own, which nothing mirrors:
    # it drops the migration and runs every service on its own cluster.
    migration = None if stack.is_preview else settings.migration
    sides = service_sides(migration, topology)
    source = source_cluster(migration.source) if migration is not None else None
    mirrored_groups: list[MirroredGroup] = []
    for name in sorted(topology.services):
        names = _service_names(topology, stack, name, topics, credentials)
        mirrored_groups += _mirrored_groups(names)
        acls.extend(_service_acls(names, broker_needs_idempotent_write=needs_idempotent_write))
        side: ClusterSide = sides[name]
        uses = source if side == "source" and source is not None else cluster
        env = _service_env(topology, settings, names, topics, uses, queues=celery_queues)
        connections, connection_secrets = connection_env(json.loads(env["MESSAGING_ROUTING"]), redis, celery)
        registry_vars, registry_secrets = registry_env(name, subjects, registry, stack)
        env |= registry_vars
        secret_env = _secret_env(uses) | connection_secrets | registry_secrets
        services.append(
            ServicePlan(
                name=name,
                cluster=side,
                principal=names.principal,
                rollout_deployment=rollouts.get(name),
                config_map=f"{name}-kafka-env",
                secret=f"{name}-kafka-credentials" if secret_env else None,
                consumer_group=names.group,
                consumer_group_prefix=names.group_prefix,
                transactional_id_prefix=names.transactional_prefix,
                produces=names.produces,
                consumes=names.consumes,
                env=dict(sorted((env | connections).items())),
                secret_env=secret_env,
            )
        )
    literal = sorted(set(acls), key=lambda acl: acl.sort_key)
    prefix_problems = _prefix_reach_problems(literal, topics.values())
    grants = LiteralGrants(
        acls=literal,
        topic_names=sorted(topic.name for topic in topics.values()),
        runtime_prefixes=sorted(
            acl.resource_name
            for acl in literal
            if acl.resource_type == "TOPIC" and acl.pattern_type == "PREFIXED"
        ),
    )
    access = grant_access(settings.acls.mode, grants, stack.file)
    # A Confluent base stack's cluster also carries its pr-<n> previews' grants.
    shares_cluster = settings.kafka.provider == "confluent" and (
        stack.is_preview or settings.preview.base_stack == stack.name
    )
    errors, budget_warnings = budget_problems(
        settings, access, grants, shares_cluster=shares_cluster, file=stack.file
    )
    adoption = _plan_adoption(settings, stack, topics.values(), access.acls)
    # Each check above reads only what the model already vouches for, so all report together.
    problems = [
        *topology_problems,
        *prefix_problems.problems,
        *collector.problems,
        *errors,
        *adoption.problems,
        *registry_problems.problems,
    ]
    if problems:
        raise ConfigError(problems)

    protected = settings.protected and not stack.is_preview
    migration_plan = (
        plan_migration(
            migration,
            domain=topology.domain,
            stack=stack.name,
            cluster=cluster,
            sides=sides,
            topics=[topic.name for topic in topics.values()],
            groups=mirrored_groups,
            target_needs_idempotent_write=needs_idempotent_write,
        )
        if migration is not None
        else None
    )
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
        redis=redis,
        celery_broker=celery,
        protection=ProtectionPlan(
            protect=protected,
            retain_on_delete=protected,
            allowed_topic_deletes=sorted(settings.protection.allow_deletes.topics),
            allowed_service_deletes=sorted(settings.protection.allow_deletes.services),
        ),
        topics=sorted(topics.values(), key=lambda topic: topic.name),
        principals=[Principal(service=s.name, name=s.principal) for s in services],
        access_mode=settings.acls.mode,
        acls=access.acls,
        role_bindings=access.role_bindings,
        services=services,
        adoption=adoption.plan,
        credentials=credentials,
        consumers=consumer_watches(topology, services, {t.name: key for key, t in topics.items()}),
        monitoring=monitoring_plan(
            settings, any(REDIS_URL_ENV in s.env or REDIS_URL_ENV in s.secret_env for s in services)
        ),
        subjects=subjects,
        schema_registry=registry,
        migration=migration_plan,
        warnings=[
            str(warning)
            for warning in [
                *access.warnings,
                *budget_warnings,
                *_shadowed_defaults(topology, stack),
                *unregistered_subjects(stack, subjects, registry, topology.subject_name_strategy),
                *_unmirrored_state(topology, stack, migration_plan),
            ]
        ],
    )


def _unmirrored_state(
    topology: Topology, stack: StackContext, migration: MigrationPlan | None
) -> list[Problem]:
    """A Streams app's repartition and changelog topics are not planned, so not mirrored: its
    state starts empty on the target."""
    if migration is None:
        return []
    return [
        Problem(
            stack.file,
            ("settings", "migration", "services", service),
            f"service '{service}' is a Kafka Streams app: its changelog and repartition topics are not "
            "mirrored, so on the target it resumes its input from translated offsets with empty state "
            "stores (docs/migration.md, Limits)",
        )
        for service, spec in sorted(topology.services.items())
        if spec.kind == "streams"
    ]


def _shadowed_defaults(topology: Topology, stack: StackContext) -> list[Problem]:
    """A stack default the file sets that no topic uses. Precedence, per topic: the stack's
    `topics.overrides`, then the topic in topology.yaml, then the stack's `topics.defaults`."""
    settings = stack.settings.topics

    def uses(field: str, key: str, spec: TopicSpec) -> bool:
        override = settings.overrides.get(key)
        if getattr(spec, field) is not None or getattr(override, field, None) is not None:
            return False
        return field != "retention" or "delete" in spec.cleanup

    return [
        Problem(
            stack.file,
            ("settings", "topics", "defaults", field),
            f"applies to no topic: topology.yaml sets {field} on every topic it could apply to, and "
            f"topology.yaml wins over a stack default; set topics.overrides.<topic>.{field} to "
            "change a topic in this stack",
        )
        for field in ("partitions", "retention")
        if field in settings.defaults.model_fields_set
        and not any(uses(field, key, spec) for key, spec in topology.all_topics.items())
    ]


def _plan_credentials(settings: StackSettings, stack: StackContext) -> CredentialPlan:
    """A preview keeps generation 1 unless asked: it copies its base stack's settings, and a
    throw-away stack has nothing to rotate."""
    rotation = settings.credentials.rotation
    rotates = not stack.is_preview or settings.preview.rotate_credentials
    return CredentialPlan(
        generation=rotation.generation if rotates else 1,
        overlap_ms=rotation.overlap,
        scram_users=settings.kafka.provider in {"msk", "kafka"},
    )


def service_principal(principal: str, credentials: CredentialPlan) -> str:
    """The principal of the wanted credential generation (SCRAM clusters; Confluent keeps its
    service account and rotates its API key)."""
    return generation_principal(principal, credentials.generation) if credentials.scram_users else principal


@dataclass(frozen=True)
class _Adoption:
    plan: AdoptionPlan
    problems: list[Problem]


def _plan_adoption(
    settings: StackSettings, stack: StackContext, topics: Iterable[PlannedTopic], acls: list[AclBinding]
) -> _Adoption:
    """settings.adopt, checked against the plan: only what the plan has can be adopted, and only
    where the provider's import ids can be known before deployment. A pr-<n> preview adopts
    nothing (it copies its base stack's settings, whose names it does not share)."""
    adopt = settings.adopt
    if stack.is_preview or not (adopt.topics or adopt.acls or adopt.users or adopt.service_accounts):
        return _Adoption(AdoptionPlan(), [])
    collector = ProblemCollector(stack.file, prefix=("settings", "adopt"))
    provider = settings.kafka.provider
    confluent = settings.kafka.confluent
    if provider in {"msk", "local"}:
        why = (
            "this stack creates its MSK cluster"
            if provider == "msk"
            else "a local stack has no Pulumi resources"
        )
        collector.add((), f"nothing to adopt: {why}; use `provider: kafka` for a cluster that already runs")
    elif provider == "confluent" and (confluent is None or confluent.existing_cluster is None):
        collector.add(
            (),
            "adopting on Confluent Cloud needs kafka.confluent.existing_cluster, the cluster holding them",
        )
    if settings.acls.mode == "rbac" and adopt.acls:
        collector.add(("acls",), "acls.mode rbac grants with role bindings: there are no ACLs to adopt")
    names = {topic.name for topic in topics}
    for index, name in enumerate(adopt.topics):
        if name not in names:
            collector.add(("topics", index), f"'{name}' is not a topic of this stack's plan")
    principals = {acl.principal for acl in acls}
    for index, user in enumerate(adopt.users):
        if provider != "kafka":
            collector.add(
                ("users", index), "only an existing cluster's (provider: kafka) SCRAM users are adopted"
            )
        elif user not in principals:
            collector.add(("users", index), f"'{user}' is not a principal of this stack's plan")
    planned = {acl.adoption_id: acl for acl in acls}
    for index, acl_id in enumerate(adopt.acls):
        acl = planned.get(acl_id)
        if acl is None:
            collector.add(("acls", index), f"'{acl_id}' is not an ACL of this stack's plan")
        elif provider == "confluent" and acl.service not in adopt.service_accounts:
            collector.add(
                ("acls", index),
                f"a Confluent ACL names its service account: set adopt.service_accounts.{acl.service}",
            )
    for service, account in adopt.service_accounts.items():
        if provider != "confluent":
            collector.add(("service_accounts", service), "service accounts are Confluent Cloud's")
        elif not re.fullmatch(r"sa-[A-Za-z0-9]+", account):
            collector.add(("service_accounts", service), f"'{account}' is not a service account id (sa-...)")
        if service not in {acl.service for acl in acls} | {acl.split(" ", 1)[0] for acl in adopt.acls}:
            collector.add(("service_accounts", service), f"'{service}' is not a service of this stack")
    plan = AdoptionPlan(
        topics=sorted(adopt.topics),
        acls=sorted(adopt.acls),
        users=sorted(adopt.users),
        service_accounts=dict(sorted(adopt.service_accounts.items())),
    )
    return _Adoption(plan, collector.problems)


def _plan_topic(
    topology: Topology,
    settings: StackSettings,
    key: str,
    spec: TopicSpec,
    *,
    prefix: str,
    stack: StackContext,
) -> PlannedTopic:
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
    """Only brokers older than Kafka 2.8 (KIP-679) want IDEMPOTENT_WRITE for idempotent producers.
    Every producer is one: the Python client always sets enable.idempotence (and Java clients do
    by default from 3.0), whatever `idempotent:` the topology says."""
    provider = settings.kafka.provider_settings
    return isinstance(provider, MskSettings | ExistingClusterSettings) and provider.needs_idempotent_write_acl


def _confluent_topic_config_problems(
    topology: Topology, stack: StackContext, collector: ProblemCollector
) -> list[Problem]:
    """On Confluent Cloud, only the topic configs it lets a topic set: a stack override's go to
    ``collector`` (the stack file), the topology's are returned (they name topology.yaml)."""
    settings = stack.settings
    if settings.kafka.provider != "confluent":
        return []
    why = f"Confluent Cloud does not let a topic set it (stack '{stack.name}'); settable: " + ", ".join(
        sorted(CONFLUENT_EDITABLE_TOPIC_CONFIGS)
    )
    in_topology = ProblemCollector(TOPOLOGY_FILE)
    for key, spec in sorted(topology.all_topics.items()):
        for name in sorted(set(spec.config) - CONFLUENT_EDITABLE_TOPIC_CONFIGS):
            in_topology.add(("topics", key, "config", name), why)
    for key, override in sorted(settings.topics.overrides.items()):
        for name in sorted(set(override.config) - CONFLUENT_EDITABLE_TOPIC_CONFIGS):
            collector.add(("topics", "overrides", key, "config", name), why)
    return in_topology.problems


def _check_display_names(topology: Topology, stack: StackContext, collector: ProblemCollector) -> None:
    """Confluent service-account display names (services, the admin, a migration's mirror) fit in
    64 characters, here and in every pr-<n> preview this stack is the base of."""
    settings = stack.settings
    if settings.kafka.provider != "confluent":
        return
    stacks = [stack.name]
    if settings.preview.base_stack == stack.name and not stack.is_preview:
        stacks.append(LONGEST_PR_STACK)
    for stack_name in stacks:
        identities = {*topology.services, PLATFORM_ADMIN}
        # A migration's mirror has an account of its own; previews drop the migration.
        if settings.migration is not None and not stack.is_preview and stack_name == stack.name:
            identities.add(PLATFORM_MIRROR)
        for service in sorted(identities):
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
        rollout_wait_seconds=kubernetes.rollout_wait,
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
    kind: str
    principal: str
    client_id: str  # the principal without a credential generation: stable across rotations
    group: str | None  # the group it joins, or None per instance / when it consumes nothing
    group_prefix: str | None  # per instance: every group under this prefix
    transactional_prefix: str | None
    produces: list[str]
    consumes: list[str]
    # kind streams: "<application.id>-", its internal topics' (and EOS transactional ids') prefix
    streams_internal_prefix: str | None = None
    # kind connect: its config/offset/status topics, and the prefix of its connectors' names
    connect_topics: dict[str, str] | None = None
    connector_prefix: str | None = None


def _service_names(
    topology: Topology,
    stack: StackContext,
    service: str,
    topics: dict[str, PlannedTopic],
    credentials: CredentialPlan,
) -> _ServiceNames:
    prefix = stack.name_prefix
    spec = topology.services[service]
    stem = f"{prefix}{topology.consumer_group(service)}" if spec.consumes or spec.kind == "connect" else None
    own = f"{prefix}{topology.domain}.{service}."
    per_instance = spec.consumer_group_per_instance
    principal = principal_name(topology.domain, stack.name, service)
    names = _ServiceNames(
        service=service,
        kind=spec.kind,
        principal=service_principal(principal, credentials),
        client_id=principal,
        group=stem if stem and not per_instance else None,
        group_prefix=f"{stem}." if stem and per_instance else None,
        transactional_prefix=f"{prefix}{topology.transactional_id_prefix(service)}"
        if spec.transactional
        else None,
        produces=[topics[key].name for key in spec.produces],
        consumes=[topics[key].name for key in spec.consumes],
    )
    if spec.kind == "streams":
        internal = f"{stem}-"
        return replace(
            names,
            streams_internal_prefix=internal,
            transactional_prefix=internal if spec.transactional else None,
        )
    if spec.kind == "connect":
        keys = topology.connect_topic_keys(service)
        return replace(
            names, connect_topics={role: topics[key].name for role, key in keys.items()}, connector_prefix=own
        )
    return names


def _mirrored_groups(names: _ServiceNames) -> list[MirroredGroup]:
    """The groups whose committed offsets a service resumes from after it moves: its consumer
    group (or per-instance groups by prefix), a Connect worker's sink connectors' groups. A
    Connect worker's own group holds no offsets and a producer has no group."""
    if not names.consumes:
        return []
    if names.kind == "connect":
        return [MirroredGroup(name=f"{CONNECT_SINK_GROUP_PREFIX}{names.connector_prefix}", prefix=True)]
    if names.group_prefix is not None:
        return [MirroredGroup(name=names.group_prefix, prefix=True)]
    return [MirroredGroup(name=names.group, prefix=False)] if names.group is not None else []


def _service_acls(names: _ServiceNames, *, broker_needs_idempotent_write: bool) -> list[AclBinding]:
    """Exactly what the declared paths need. READ and WRITE imply DESCRIBE on the same resource
    (Kafka's authorizer, Redpanda's too), so DESCRIBE is never granted on its own.

    Streams and Connect grants were each shown needed on a real broker (tests/integration):
    - streams: its group; CREATE, READ, WRITE on "<application.id>-" topics (repartition,
      changelog), DELETE there too (it purges consumed repartition records, which it creates
      with unlimited retention); WRITE on "<application.id>-" transactional ids for exactly-once;
    - connect: its workers' group; READ and WRITE on its config, offset and status topics; READ on
      the groups of its sink connectors ("connect-<connector name>", names under its prefix).
    """
    grants: list[GrantSpec] = []
    grants += [("TOPIC", topic, "LITERAL", "WRITE") for topic in names.produces]
    grants += [("TOPIC", topic, "LITERAL", "READ") for topic in names.consumes]
    if names.group is not None:
        grants.append(("GROUP", names.group, "LITERAL", "READ"))
    if names.group_prefix is not None:
        grants.append(("GROUP", names.group_prefix, "PREFIXED", "READ"))
    if names.transactional_prefix is not None:
        grants.append(("TRANSACTIONAL_ID", names.transactional_prefix, "PREFIXED", "WRITE"))
    if names.streams_internal_prefix is not None:
        grants += [
            ("TOPIC", names.streams_internal_prefix, "PREFIXED", operation)
            for operation in STREAMS_INTERNAL_TOPIC_OPERATIONS
        ]
    for topic in (names.connect_topics or {}).values():
        grants += [("TOPIC", topic, "LITERAL", "READ"), ("TOPIC", topic, "LITERAL", "WRITE")]
    if names.connector_prefix is not None and names.consumes:
        grants.append(("GROUP", f"{CONNECT_SINK_GROUP_PREFIX}{names.connector_prefix}", "PREFIXED", "READ"))
    if broker_needs_idempotent_write and any(grant[3] == "WRITE" for grant in grants):
        grants.append(("CLUSTER", CLUSTER_RESOURCE_NAME, "LITERAL", "IDEMPOTENT_WRITE"))
    return bindings_of(names.principal, names.service, grants)


def _service_env(
    topology: Topology,
    settings: StackSettings,
    names: _ServiceNames,
    topics: dict[str, PlannedTopic],
    cluster: ClusterPlan,
    *,
    queues: dict[str, list[str]],
) -> dict[str, str]:
    spec = topology.services[names.service]
    messaging = settings.messaging
    env = {
        "MESSAGING_BACKEND": messaging.backend_of(names.service),
        "MESSAGING_DUAL_WRITE": "true" if messaging.dual_write_of(names.service) else "false",
        "MESSAGING_ROUTING": json.dumps(
            _routing_for(topology, settings, spec.produces, topics, queues),
            sort_keys=True,
            separators=(",", ":"),
        ),
        "KAFKA_BROKER_URL": cluster.bootstrap,
        "KAFKA_SECURITY_PROTOCOL": cluster.security_protocol,
        "KAFKA_CLIENT_ID": names.client_id,
        # The Java clients' partitioner for keyed records; librdkafka's default (consistent_random,
        # CRC32) would put the same key on another partition than a Java service does.
        "KAFKA_PARTITIONER": KAFKA_PARTITIONER,
    }
    if cluster.sasl_mechanism:
        env["KAFKA_SASL_MECHANISM"] = cluster.sasl_mechanism
    env |= _kind_env(names, transactional=spec.transactional)
    if spec.idempotent or spec.transactional:
        env["KAFKA_ENABLE_IDEMPOTENCE"] = "true"
    if spec.produces:
        env["KAFKA_PRODUCE_TOPICS"] = ",".join(topics[key].name for key in spec.produces)
    if spec.consumes:
        env["KAFKA_CONSUME_TOPICS"] = ",".join(topics[key].name for key in spec.consumes)
    for key in {*spec.produces, *spec.consumes}:
        env[f"KAFKA_TOPIC_{env_var_suffix(key)}"] = topics[key].name
    return dict(sorted(env.items()))


def _prefix_reach_problems(acls: list[AclBinding], topics: Iterable[PlannedTopic]) -> ProblemCollector:
    """A PREFIXED grant must not reach a planned topic, or another service's group or
    transactional id: a name chosen in topology.yaml would hand it over."""
    problems = ProblemCollector(TOPOLOGY_FILE)
    topic_names = sorted(topic.name for topic in topics)
    reported: set[tuple[str, str]] = set()
    for acl in acls:
        if acl.pattern_type != "PREFIXED" or (acl.service, acl.resource_name) in reported:
            continue
        if acl.resource_type == "TOPIC":
            reached = [f"topic '{name}'" for name in topic_names if name.startswith(acl.resource_name)]
        else:
            reached = sorted(
                {
                    f"{other.resource_type.lower().replace('_', ' ')} '{other.resource_name}' of service "
                    f"'{other.service}'"
                    for other in acls
                    if other.service != acl.service
                    and other.resource_type == acl.resource_type
                    and other.resource_name.startswith(acl.resource_name)
                }
            )
        if reached:
            reported.add((acl.service, acl.resource_name))
            problems.add(
                ("services", acl.service),
                f"its grant on everything under '{acl.resource_name}' would also reach {', '.join(reached)}; "
                "rename one of them",
            )
    return problems


def _kind_env(names: _ServiceNames, *, transactional: bool) -> dict[str, str]:
    """How a service of its kind names its group, ids and own topics."""
    if names.kind == "streams":
        guarantee = "exactly_once_v2" if transactional else "at_least_once"
        return {
            "KAFKA_STREAMS_APPLICATION_ID": str(names.group),
            "KAFKA_STREAMS_PROCESSING_GUARANTEE": guarantee,
        }
    if names.kind == "connect":
        topics = names.connect_topics or {}
        return {
            "KAFKA_CONNECT_GROUP_ID": str(names.group),
            "KAFKA_CONNECT_CONFIG_TOPIC": topics["config"],
            "KAFKA_CONNECT_OFFSET_TOPIC": topics["offset"],
            "KAFKA_CONNECT_STATUS_TOPIC": topics["status"],
            "KAFKA_CONNECT_CONNECTOR_PREFIX": str(names.connector_prefix),
        }
    env: dict[str, str] = {}
    if names.group is not None:
        env["KAFKA_CONSUMER_GROUP"] = names.group
    if names.group_prefix is not None:
        env["KAFKA_CONSUMER_GROUP_PREFIX"] = names.group_prefix
    if names.transactional_prefix is not None:
        env["KAFKA_TRANSACTIONAL_ID_PREFIX"] = names.transactional_prefix
    return env


def _routing_for(
    topology: Topology,
    settings: StackSettings,
    produces: list[str],
    topics: dict[str, PlannedTopic],
    queues: dict[str, list[str]],
) -> dict[str, dict[str, Any]]:
    """The events this service may publish: those on its own topics, plus the non-Kafka ones.
    A topic's events also name the Celery fallback queues of its consumers (set whether or not
    the stack has a Celery broker yet, so adding one changes no route)."""
    routing: dict[str, dict[str, Any]] = {}
    for name, event in sorted(topology.events.items()):
        if event.topic is not None and event.topic not in produces:
            continue
        transport: str = settings.messaging.routing.get(name, event.transport)
        route: dict[str, Any] = {"transport": transport}
        if event.topic is not None and transport in TOPIC_TRANSPORTS:
            route["topic"] = topics[event.topic].name
            if event.key is not None:
                route["key"] = event.key
            route["queues"] = queues[event.topic]
        if event.channel is not None and transport in {"redis", "both"}:
            route["channel"] = event.channel
        routing[name] = route
    return routing


def _celery_queues(
    topology: Topology, stack: StackContext, topics: dict[str, PlannedTopic]
) -> dict[str, list[str]]:
    """Per topic key, the Celery fallback queues of the services (kind `app`) consuming it: one
    per service, named after its group (or per-instance group prefix), so with
    MESSAGING_BACKEND=celery every consuming service still gets every event, as on Kafka."""
    queues: dict[str, list[str]] = {key: [] for key in topics}
    for service, spec in sorted(topology.services.items()):
        if spec.kind != "app":
            continue
        group = f"{stack.name_prefix}{topology.consumer_group(service)}"
        for key in spec.consumes:
            queues[key].append(f"{group}." if spec.consumer_group_per_instance else group)
    return {key: sorted(names) for key, names in queues.items()}


def _secret_env(cluster: ClusterPlan) -> dict[str, str]:
    """What each Secret value is (shown by `plan` and `env`), never the value itself."""
    if cluster.sasl_mechanism is None:
        return {}
    kind = "API key" if cluster.provider == "confluent" else "SCRAM"
    username, password = ("id", "secret") if cluster.provider == "confluent" else ("user", "password")
    return {SASL_USERNAME_ENV: f"{kind} {username}", SASL_PASSWORD_ENV: f"{kind} {password}"}
