"""An existing Kafka cluster (Apache Kafka, Strimzi, Redpanda, an MSK cluster made elsewhere):
one SCRAM user per service, topics and the plan's ACLs, all through the Kafka Admin API."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_kafka as kafka
import pulumi_random as random

from infra.credential_rotation import Generations
from infra.names import generation_suffix
from infra.plan_model import Plan
from infra.program.cluster_access import ClusterAccess, ServiceCredentials
from infra.program.kafka_admin import AdminConnection, admin_provider, manage_topics_and_acls
from infra.program.previous_deployment import PreviousDeployment
from infra.program.protection import kept
from infra.settings import ExistingClusterSettings

PASSWORD_LENGTH = 32
# terraform-provider-kafka's CustomizeDiff for kafka_user_scram_credential reads the password
# from the raw config with AsString(), which panics on an unknown value: every preview of a
# credential whose RandomPassword does not exist yet crashes the provider ("value is unknown").
# Only in a preview, and only for such a credential, the user is planned with this stand-in;
# `up` always sends the generated password (docs/deploying.md, "Existing clusters").
PREVIEW_PASSWORD = "(generated at deployment)"  # pragma: allowlist secret


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
        )
        provider = admin_provider("kafka-admin", connection, parent=self)
        existing = previous.credential_versions()
        users = ScramUsers(plan, settings, provider, self)
        credentials = {
            service.name: users.create(service.name, generations.current, existing.get(service.name))
            for service in plan.services
        }
        if generations.previous is not None:
            for service in plan.services:
                users.create(service.name, generations.previous, deployed_version=None, current=False)
        manage_topics_and_acls(plan, provider, parent=self, generations=generations)
        self.access = ClusterAccess(
            bootstrap_servers=pulumi.Output.from_input(plan.cluster.bootstrap),
            cluster_id=pulumi.Output.from_input(plan.cluster.bootstrap),
            credentials=credentials,
        )
        self.register_outputs({"bootstrap_servers": plan.cluster.bootstrap})


class ScramUsers:
    """One SCRAM user per service and credential generation (`<principal>` or `<principal>-g<N>`)."""

    def __init__(
        self, plan: Plan, settings: ExistingClusterSettings, provider: kafka.Provider, parent: pulumi.Resource
    ) -> None:
        self.plan, self.settings, self.provider, self.parent = plan, settings, provider, parent

    def create(
        self, service: str, generation: int, deployed_version: str | None, *, current: bool = True
    ) -> ServiceCredentials:
        """``current``: the generation services use (kept in protected stacks); the previous
        one is not protected, so the deployment after the overlap can revoke it."""
        plan = self.plan
        username = plan.principal_at(service, generation)
        suffix = generation_suffix(generation)
        version = f"{username}#{generation}"
        password = random.RandomPassword(
            f"scram-password-{service}{suffix}",
            length=PASSWORD_LENGTH,
            special=False,
            keepers={"generation": str(generation)},
            opts=pulumi.ResourceOptions(parent=self.parent),
        )
        planned_password = password.result
        if current and pulumi.runtime.is_dry_run() and deployed_version != version:
            planned_password = pulumi.Output.secret(PREVIEW_PASSWORD)
        protection = kept(plan, self.parent) if current else pulumi.ResourceOptions(parent=self.parent)
        user = kafka.UserScramCredential(
            f"scram-user-{service}{suffix}",
            username=username,
            scram_mechanism=self.settings.sasl_mechanism,
            password=planned_password,
            opts=protection.merge(pulumi.ResourceOptions(provider=self.provider)),
        )
        return ServiceCredentials(
            # From the user resource, so the Kubernetes Secret is written only once the user exists.
            username=user.username,
            password=pulumi.Output.secret(password.result),
            principal_id=pulumi.Output.from_input(username),
            version=pulumi.Output.from_input(version),
        )
