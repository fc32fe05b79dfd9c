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
    AdminConnection,
    ScramUser,
    manage_mirror_access,
    manage_service_access,
    manage_topics,
    scram_login,
    scram_password,
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
        ca_cert = None
        if settings.tls.ca_cert_file is not None:
            ca_cert = (project_dir / settings.tls.ca_cert_file).read_text(encoding="utf-8")
        connection = AdminConnection(
            bootstrap_servers=settings.bootstrap_servers,
            username=settings.admin.username,
            password=pulumi.Output.secret(admin_password),
            sasl_mechanism=settings.admin_mechanism,
            tls=settings.security_protocol == "SASL_SSL",
            ca_cert=ca_cert,
            skip_tls_verify=settings.tls.skip_verify,
            password_config=ADMIN_PASSWORD_KEY,
        )
        valid = [generations.current] + ([generations.previous] if generations.previous is not None else [])
        users = {
            service.name: {
                plan.principal_at(service.name, generation): ScramUser(
                    settings.sasl_mechanism,
                    scram_password(self, service.name, generation),
                )
                for generation in valid
            }
            for service in plan.services
        }
        manage_topics(plan, connection, self, previous)
        access = manage_service_access(plan, connection, self, generations, previous, users=users)
        mirror = None
        if plan.migration is not None:
            principal = plan.migration.target.principal
            user = ScramUser(settings.sasl_mechanism, scram_password(self, PLATFORM_MIRROR))
            mirror_access = manage_mirror_access(plan.migration.target, connection, self, user=user)
            mirror = scram_login(mirror_access, principal, user, principal)
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
