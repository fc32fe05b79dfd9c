"""The Pulumi program: a thin consumer of the resolved plan."""

from __future__ import annotations

from pathlib import Path

import pulumi

from infra.errors import ConfigError
from infra.plan import Plan, resolve_plan
from infra.program.cluster_access import ClusterAccess
from infra.program.kubernetes_env import ServiceKafkaEnv, kubernetes_provider, namespace_for
from infra.program.protection import SERVICES_OUTPUT, TOPIC_NAMES_OUTPUT, guard_deletes
from infra.stacks import PROJECT, SETTINGS_KEY, TOPOLOGY_FILE, checked_stack, settings_from_config
from infra.topology import load_topology

PROJECT_DIR = Path(__file__).resolve().parents[2]


def plan_from_pulumi_config(project_dir: Path = PROJECT_DIR) -> Plan:
    """The same validation as `python -m infra validate`, fed from Pulumi's config."""
    stack = pulumi.get_stack()
    file = f"Pulumi.{stack}.yaml"
    topology = load_topology(project_dir / TOPOLOGY_FILE)
    settings_data = pulumi.Config(PROJECT).require_object("settings")
    settings = settings_from_config({SETTINGS_KEY: settings_data}, file)
    return resolve_plan(topology, checked_stack(stack, file, settings, topology))


def cluster_for(plan: Plan) -> ClusterAccess:
    if plan.cluster.provider == "confluent":
        from infra.program.confluent import ConfluentPlatform

        return ConfluentPlatform("kafka", plan).access
    if plan.cluster.provider == "msk":
        from infra.program.msk import MskPlatform

        return MskPlatform("kafka", plan).access
    # local: Redpanda runs from docker-compose.kafka.yml, outside Pulumi.
    return ClusterAccess(
        bootstrap_servers=pulumi.Output.from_input(plan.cluster.bootstrap),
        cluster_id=pulumi.Output.from_input("local"),
        credentials={},
    )


def build(plan: Plan) -> ClusterAccess:
    guard_deletes(plan)
    access = cluster_for(plan)
    provider = kubernetes_provider(plan)
    namespace = namespace_for(plan, provider)
    for service in plan.services:
        ServiceKafkaEnv(
            service,
            plan,
            access,
            namespace,
            opts=pulumi.ResourceOptions(providers=[provider] if provider else None),
        )

    pulumi.export("bootstrap_servers", access.bootstrap_servers)
    pulumi.export("cluster_id", access.cluster_id)
    pulumi.export(TOPIC_NAMES_OUTPUT, [topic.name for topic in plan.topics])
    pulumi.export(SERVICES_OUTPUT, [service.name for service in plan.services])
    pulumi.export("kubernetes_namespace", namespace)
    pulumi.export("principal_ids", {name: cred.principal_id for name, cred in access.credentials.items()})
    pulumi.export(
        "service_credentials",
        pulumi.Output.secret(
            {
                name: {"username": cred.username, "password": cred.password}
                for name, cred in access.credentials.items()
            }
        ),
    )
    for name, value in access.exports.items():
        pulumi.export(name, value)
    return access


def run(project_dir: Path = PROJECT_DIR) -> tuple[Plan, ClusterAccess]:
    try:
        plan = plan_from_pulumi_config(project_dir)
    except ConfigError as exc:
        # A clean, complete message and no resources registered: nothing is created or changed.
        raise pulumi.RunError("invalid configuration:\n" + "\n".join(map(str, exc.problems))) from None
    return plan, build(plan)
