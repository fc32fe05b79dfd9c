"""An existing Kafka cluster (Apache Kafka, Strimzi, Redpanda, an MSK cluster made elsewhere):
one SCRAM user per service, topics and the plan's ACLs, all through the Kafka Admin API."""

from __future__ import annotations

from pathlib import Path

import pulumi

from infra.model.cluster_connection import ExistingClusterSettings
from infra.model.names import PLATFORM_MIRROR
from infra.model.stacks import ADMIN_PASSWORD_KEY
from infra.plan.credential_rotation import Generations
from infra.plan.model import Plan
from infra.program.cluster_access import ClusterAccess
from infra.program.kafka_admin import (
    ScramUser,
    existing_cluster_connection,
    manage_mirror_access,
    manage_service_access,
    manage_topics,
    mirror_login,
    scram_login,
    scram_password,
    service_scram_users,
)
from infra.program.previous_deployment import PreviousDeployment


class ExistingClusterPlatform(pulumi.ComponentResource):
    """Everything the plan asks of a cluster this project does not create."""

    access: ClusterAccess

    def __init__(
        self,
        name: str,
        plan: Plan,
        admin_password: pulumi.Output[str],
        project_dir: Path,
        *,
        previous: PreviousDeployment,
        generations: Generations,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kafka-platform:kafka:ExistingCluster", name, None, opts)
        settings = plan.cluster.provider_settings
        if not isinstance(settings, ExistingClusterSettings):
            raise ValueError("a 'kafka' stack needs its kafka.cluster settings")
        connection = existing_cluster_connection(settings, admin_password, ADMIN_PASSWORD_KEY, project_dir)
        users = {
            service.name: service_scram_users(self, plan, service.name, generations, settings.sasl_mechanism)
            for service in plan.services
        }
        manage_topics(plan, connection, self, previous)
        access = manage_service_access(plan, connection, self, generations, previous, users=users)
        mirror = None
        if plan.migration is not None:
            principal = plan.migration.target.principal
            user = ScramUser(settings.sasl_mechanism, scram_password(self, PLATFORM_MIRROR))
            mirror_access = manage_mirror_access(plan.migration.target, connection, self, user=user)
            mirror = mirror_login(mirror_access, principal, user)
        self.access = ClusterAccess(
            bootstrap_servers=pulumi.Output.from_input(plan.cluster.bootstrap),
            cluster_id=pulumi.Output.from_input(plan.cluster.bootstrap),
            credentials={
                service.name: scram_login(
                    access[service.name],
                    username,
                    users[service.name][username],
                    f"{username}#{generations.current}",
                )
                for service in plan.services
                for username in [plan.principal_at(service.name, generations.current)]
            },
            mirror=mirror,
        )
        self.register_outputs({"bootstrap_servers": plan.cluster.bootstrap})
