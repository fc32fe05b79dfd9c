"""The Pulumi program: a thin consumer of the resolved plan."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pulumi

from infra.model.errors import ConfigError
from infra.model.event_schemas import files_in, load_event_schemas
from infra.model.stacks import (
    ADMIN_PASSWORD_KEY,
    ADMIN_PASSWORD_NAME,
    MIGRATION_SOURCE_PASSWORD_KEY,
    PROJECT,
    SCHEMA_REGISTRY_PASSWORD_KEY,
    SECRET_URL_KEYS,
    SETTINGS_KEY,
    TOPOLOGY_FILE,
    checked_stack,
    settings_from_config,
)
from infra.model.topology import load_topology
from infra.plan.credential_rotation import Generations, generations_now
from infra.plan.messaging_connections import CELERY_BROKER_URL_ENV, REDIS_URL_ENV
from infra.plan.migration import MIRROR_CREDENTIALS_OUTPUT
from infra.plan.model import SCHEMA_REGISTRY_OUTPUT, Plan, ServicePlan
from infra.plan.resolve import resolve_plan
from infra.program.cluster_access import ClusterAccess
from infra.program.kafka_admin import family
from infra.program.kafka_preflight import KafkaCheck, check_kafka_cluster
from infra.program.kubernetes_env import ServiceKafkaEnv, kubernetes_provider, namespace_for, service_env
from infra.program.kubernetes_preflight import check_kubernetes_targets
from infra.program.migration_source import MigrationSource
from infra.program.mirror_maker_deployment import MirrorMakerDeployment
from infra.program.monitoring import confluent_scrape_job, prometheus_monitoring
from infra.program.preflight import refuse_unsafe_changes
from infra.program.previous_deployment import (
    CREDENTIAL_GENERATIONS_OUTPUT,
    CREDENTIAL_VERSIONS_OUTPUT,
    KAFKA_CLUSTER_ID_OUTPUT,
    MIGRATION_MIRROR_OUTPUT,
    SCHEMA_SUBJECTS_OUTPUT,
    SERVICES_OUTPUT,
    TOPIC_FAMILIES_OUTPUT,
    TOPIC_NAMES_OUTPUT,
    TOPIC_PARTITIONS_OUTPUT,
    PreviousDeployment,
)
from infra.program.registry_preflight import RegistryCheck, check_schema_registry
from infra.program.schema_registration import manage_subjects, registry_secret_env
from infra.program.sdk_debug_logs import mute_registration_debug_logs
from infra.program.state_migration import GROUPED_PROVIDERS, STATE_LAYOUT, STATE_LAYOUT_OUTPUT

KubernetesCheck = Callable[[Plan], None]
PROJECT_DIR = Path(__file__).resolve().parents[2]


def plan_from_pulumi_config(project_dir: Path = PROJECT_DIR) -> Plan:
    """The same validation as `python -m infra validate`, fed from Pulumi's config."""
    stack = pulumi.get_stack()
    file = f"Pulumi.{stack}.yaml"
    topology = load_topology(project_dir / TOPOLOGY_FILE)
    config = pulumi.Config(PROJECT)
    settings = settings_from_config({SETTINGS_KEY: config.require_object("settings")}, file)
    # Only whether each secret is set; its value stays a secret output.
    secrets = {
        ADMIN_PASSWORD_KEY: ADMIN_PASSWORD_NAME,
        SCHEMA_REGISTRY_PASSWORD_KEY: SCHEMA_REGISTRY_PASSWORD_KEY.split(":", 1)[1],
        MIGRATION_SOURCE_PASSWORD_KEY: MIGRATION_SOURCE_PASSWORD_KEY.split(":", 1)[1],
    } | {key: key.split(":", 1)[1] for key in SECRET_URL_KEYS.values()}
    keys = [SETTINGS_KEY] + [key for key, name in secrets.items() if config.get_secret(name) is not None]
    return resolve_plan(
        topology,
        checked_stack(stack, file, settings, topology, config_keys=keys),
        load_event_schemas(topology, files_in(project_dir)),
    )


def rotation_clock() -> datetime:
    """Now, for credential rotation's overlap (a function, so tests can move time)."""
    return datetime.now(UTC)


def cluster_for(
    plan: Plan, project_dir: Path, previous: PreviousDeployment, generations: Generations
) -> ClusterAccess:
    if plan.cluster.provider == "confluent":
        from infra.program.confluent import ConfluentPlatform

        return ConfluentPlatform("kafka", plan, generations).access
    if plan.cluster.provider == "msk":
        from infra.program.msk import MskPlatform

        return MskPlatform("kafka", plan, generations, previous).access
    if plan.cluster.provider == "kafka":
        from infra.program.existing_cluster import ExistingClusterPlatform

        password = pulumi.Config(PROJECT).require_secret(ADMIN_PASSWORD_NAME)
        return ExistingClusterPlatform(
            "kafka", plan, password, project_dir, previous=previous, generations=generations
        ).access
    # local: Redpanda runs from docker-compose.kafka.yml, outside Pulumi.
    return ClusterAccess(
        bootstrap_servers=pulumi.Output.from_input(plan.cluster.bootstrap),
        cluster_id=pulumi.Output.from_input("local"),
        credentials={},
    )


def secret_urls(plan: Plan) -> dict[str, pulumi.Output[str]]:
    """Connection URLs kept as secret config, by the env var that carries them."""
    config = pulumi.Config(PROJECT)
    urls: dict[str, pulumi.Output[str]] = {}
    for key, connection in ((REDIS_URL_ENV, plan.redis), (CELERY_BROKER_URL_ENV, plan.celery_broker)):
        if connection is not None and connection.secret_config is not None:
            urls[key] = config.require_secret(connection.secret_config.split(":", 1)[1])
    return urls


def mirror_credentials(target: ClusterAccess, source: ClusterAccess | None) -> pulumi.Output[object]:
    """MirrorMaker 2's login on each side of the migration that takes one (a PLAINTEXT side takes
    none), as one secret output: where `migration mirror` (no Kubernetes Secret) gets its passwords."""
    sides = {"source": source.mirror if source is not None else None, "target": target.mirror}
    return pulumi.Output.secret(
        {
            side: {"username": login.username, "password": login.password}
            for side, login in sides.items()
            if login is not None
        }
    )


def build(
    plan: Plan,
    previous: PreviousDeployment,
    project_dir: Path = PROJECT_DIR,
    *,
    kubernetes_check: KubernetesCheck = check_kubernetes_targets,
    kafka_check: KafkaCheck = check_kafka_cluster,
    registry_check: RegistryCheck = check_schema_registry,
) -> ClusterAccess:
    # Before the first registration: a refusal here leaves every resource untouched.
    refuse_unsafe_changes(plan, previous)
    kafka_cluster_id = kafka_check(plan, previous, project_dir)
    registry_check(plan, previous)
    kubernetes_check(plan)
    for warning in plan.warnings:  # the same warnings `validate` prints, in the preview's diagnostics
        pulumi.log.warn(warning)
    credentials = plan.credentials
    generations = generations_now(
        credentials.generation, credentials.overlap_ms, previous.credential_generations(), rotation_clock()
    )
    access = cluster_for(plan, project_dir, previous, generations)
    # A migrating stack: the services still on the source read and write there.
    source = (
        MigrationSource("migration-source", plan, generations, project_dir).access if plan.migration else None
    )

    def access_of(service: ServicePlan) -> ClusterAccess:
        return source if source is not None and service.cluster == "source" else access

    subjects = manage_subjects(plan)
    if plan.kubernetes is not None:
        provider = kubernetes_provider(plan.kubernetes, project_dir)
        namespace = namespace_for(plan.kubernetes, provider)
        # What each service's Secret carries besides its SASL login, by env var.
        secret_values = secret_urls(plan) | registry_secret_env(plan)
        kubernetes_opts = pulumi.ResourceOptions(providers=[provider])
        for service in plan.services:
            ServiceKafkaEnv(
                service,
                access_of(service),
                namespace,
                secret_values,
                rollout_wait_seconds=plan.kubernetes.rollout_wait_seconds,
                opts=kubernetes_opts,
            )
        if source is not None:
            MirrorMakerDeployment(
                plan,
                access,
                source,
                namespace,
                wait_seconds=plan.kubernetes.rollout_wait_seconds,
                opts=kubernetes_opts,
            )
        prometheus_monitoring(plan, namespace, kubernetes_opts)
        if (
            plan.monitoring.prometheus_rules
            and plan.monitoring.metrics_source == "confluent"
            and not plan.name_prefix
        ):
            crn = pulumi.Output.from_input(access.exports["rbac_crn"]).apply(str)
            confluent_scrape_job(plan, access.cluster_id, crn, namespace, kubernetes_opts)
        pulumi.export("kubernetes_namespace", namespace)
    else:
        # `kubernetes: none`: the non-secret env of every service, for whatever deploys it.
        pulumi.export(
            "service_env",
            {service.name: service_env(service, access_of(service)) for service in plan.services},
        )

    pulumi.export("bootstrap_servers", access.bootstrap_servers)
    pulumi.export("cluster_id", access.cluster_id)
    pulumi.export(TOPIC_NAMES_OUTPUT, [topic.name for topic in plan.topics])
    pulumi.export(TOPIC_PARTITIONS_OUTPUT, {topic.name: topic.partitions for topic in plan.topics})
    pulumi.export(TOPIC_FAMILIES_OUTPUT, {topic.name: family(topic.key) for topic in plan.topics})
    if kafka_cluster_id is not None:
        pulumi.export(KAFKA_CLUSTER_ID_OUTPUT, kafka_cluster_id)
    pulumi.export(SERVICES_OUTPUT, [service.name for service in plan.services])
    if subjects is not None and plan.schema_registry is not None:
        pulumi.export(SCHEMA_REGISTRY_OUTPUT, plan.schema_registry.url)
        pulumi.export(SCHEMA_SUBJECTS_OUTPUT, [subject.subject for subject in plan.subjects])
    pulumi.export("principal_ids", {name: cred.principal_id for name, cred in access.credentials.items()})
    pulumi.export(CREDENTIAL_GENERATIONS_OUTPUT, generations.to_output())
    pulumi.export(
        CREDENTIAL_VERSIONS_OUTPUT, {name: cred.version for name, cred in access.credentials.items()}
    )
    pulumi.export(
        "service_credentials",
        pulumi.Output.secret(
            {
                name: {"username": cred.username, "password": cred.password}
                for name, cred in access.credentials.items()
            }
            | {
                # The login each service uses now: its source user while it is on the source.
                service.name: {"username": cred.username, "password": cred.password}
                for service in plan.services
                if service.cluster == "source" and source is not None
                for cred in [source.credentials[service.name]]
            }
        ),
    )
    if plan.migration is not None:
        pulumi.export(MIGRATION_MIRROR_OUTPUT, plan.migration.source.principal)
        pulumi.export(MIRROR_CREDENTIALS_OUTPUT, mirror_credentials(access, source))
    if plan.cluster.provider in GROUPED_PROVIDERS:
        pulumi.export(STATE_LAYOUT_OUTPUT, STATE_LAYOUT)
    for name, value in access.exports.items():
        pulumi.export(name, value)
    return access


def run(
    project_dir: Path = PROJECT_DIR,
    kubernetes_check: KubernetesCheck = check_kubernetes_targets,
    kafka_check: KafkaCheck = check_kafka_cluster,
    registry_check: RegistryCheck = check_schema_registry,
) -> tuple[Plan, ClusterAccess]:
    """The program. ``kubernetes_check``, ``kafka_check`` and ``registry_check`` read the live
    clusters and registry before anything is registered (Pulumi's mocks have none behind them:
    their tests pass their own)."""
    mute_registration_debug_logs()
    try:
        plan = plan_from_pulumi_config(project_dir)
    except ConfigError as exc:
        # A clean, complete message and no resources registered: nothing is created or changed.
        raise pulumi.RunError("invalid configuration:\n" + "\n".join(map(str, exc.problems))) from None
    access = build(
        plan,
        PreviousDeployment.of_this_stack(),
        project_dir,
        kubernetes_check=kubernetes_check,
        kafka_check=kafka_check,
        registry_check=registry_check,
    )
    return plan, access
