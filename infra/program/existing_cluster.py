"""An existing Kafka cluster (Apache Kafka, Strimzi, Redpanda, an MSK cluster made elsewhere):
one SCRAM user per service, topics and the plan's ACLs, all through the Kafka Admin API."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_random as random

from infra.model.cluster_connection import ExistingClusterSettings
from infra.model.names import generation_suffix
from infra.model.stacks import ADMIN_PASSWORD_KEY
from infra.plan.credential_rotation import Generations
from infra.plan.model import Plan
from infra.program.cluster_access import ClusterAccess, ServiceCredentials
from infra.program.kafka_admin import (
    AdminConnection,
    ScramUser,
    ServiceAccess,
    manage_service_access,
    manage_topics,
)
from infra.program.previous_deployment import PreviousDeployment

PASSWORD_LENGTH = 32


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
                    settings.sasl_mechanism, self._password(service.name, generation)
                )
                for generation in valid
            }
            for service in plan.services
        }
        manage_topics(plan, connection, self, previous)
        access = manage_service_access(plan, connection, self, generations, previous, users=users)
        self.access = ClusterAccess(
            bootstrap_servers=pulumi.Output.from_input(plan.cluster.bootstrap),
            cluster_id=pulumi.Output.from_input(plan.cluster.bootstrap),
            credentials={
                service.name: self._credentials(
                    plan, access[service.name], users[service.name], service.name, generations.current
                )
                for service in plan.services
            },
        )
        self.register_outputs({"bootstrap_servers": plan.cluster.bootstrap})

    def _password(self, service: str, generation: int) -> pulumi.Output[str]:
        """One SCRAM password per service and credential generation; a new generation is a new
        password (the user `<principal>` or `<principal>-g<N>` is made by ServiceAccess)."""
        password = random.RandomPassword(
            f"scram-password-{service}{generation_suffix(generation)}",
            length=PASSWORD_LENGTH,
            special=False,
            keepers={"generation": str(generation)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        return password.result

    @staticmethod
    def _credentials(
        plan: Plan, access: ServiceAccess, users: dict[str, ScramUser], service: str, generation: int
    ) -> ServiceCredentials:
        username = plan.principal_at(service, generation)
        return ServiceCredentials(
            # From the access resource, so the Kubernetes Secret is written only once the user exists.
            username=access.id.apply(lambda _: username),
            password=pulumi.Output.secret(users[username].password),
            principal_id=pulumi.Output.from_input(username),
            version=pulumi.Output.from_input(f"{username}#{generation}"),
        )
