"""An existing Kafka cluster (Apache Kafka, Strimzi, Redpanda, an MSK cluster made elsewhere):
one SCRAM user per service, topics and the plan's ACLs, all through the Kafka Admin API."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_kafka as kafka
import pulumi_random as random

from infra.plan_model import Plan, ServicePlan
from infra.program.cluster_access import ClusterAccess, ServiceCredentials
from infra.program.kafka_admin import AdminConnection, admin_provider, manage_topics_and_acls
from infra.program.previous_deployment import PreviousDeployment
from infra.program.protection import kept
from infra.settings import ExistingClusterSettings

PASSWORD_LENGTH = 32
# Bumped when a password must be replaced; the Secret's rollout checksum includes it.
CREDENTIAL_GENERATION = "1"
# terraform-provider-kafka's CustomizeDiff for kafka_user_scram_credential reads the password
# from the raw config with AsString(), which panics on an unknown value: every preview of a
# credential whose RandomPassword does not exist yet crashes the provider ("value is unknown").
# Only in a preview, and only for such a credential, the user is planned with this stand-in;
# `up` always sends the generated password (see README, "Existing clusters").
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
        credentials = {
            service.name: self._scram_user(plan, service, settings, provider, existing.get(service.name))
            for service in plan.services
        }
        manage_topics_and_acls(plan, provider, parent=self)
        self.access = ClusterAccess(
            bootstrap_servers=pulumi.Output.from_input(plan.cluster.bootstrap),
            cluster_id=pulumi.Output.from_input(plan.cluster.bootstrap),
            credentials=credentials,
        )
        self.register_outputs({"bootstrap_servers": plan.cluster.bootstrap})

    def _scram_user(
        self,
        plan: Plan,
        service: ServicePlan,
        settings: ExistingClusterSettings,
        provider: kafka.Provider,
        deployed_version: str | None,
    ) -> ServiceCredentials:
        version = f"{service.principal}#{CREDENTIAL_GENERATION}"
        password = random.RandomPassword(
            f"scram-password-{service.name}",
            length=PASSWORD_LENGTH,
            special=False,
            keepers={"generation": CREDENTIAL_GENERATION},
            opts=pulumi.ResourceOptions(parent=self),
        )
        planned_password = password.result
        if pulumi.runtime.is_dry_run() and deployed_version != version:
            planned_password = pulumi.Output.secret(PREVIEW_PASSWORD)
        user = kafka.UserScramCredential(
            f"scram-user-{service.name}",
            username=service.principal,
            scram_mechanism=settings.sasl_mechanism,
            password=planned_password,
            opts=kept(plan, self).merge(pulumi.ResourceOptions(provider=provider)),
        )
        return ServiceCredentials(
            # From the user resource, so the Kubernetes Secret is written only once the user exists.
            username=user.username,
            password=pulumi.Output.secret(password.result),
            principal_id=pulumi.Output.from_input(service.principal),
            version=pulumi.Output.from_input(version),
        )
