"""Confluent Cloud's Schema Registry for a stack that owns its cluster: the environment's
registry (read, never managed), the admin's registry key and ownership of the stack's subjects,
then per subject its compatibility level (`SubjectConfig`), its schema (`Schema`) and its services'
role bindings: producers `DeveloperWrite`, consumers `DeveloperRead`; and each such service's own
registry API key (owned by its service account), which its Secret carries."""

from __future__ import annotations

import pulumi
import pulumi_confluentcloud as confluent

from infra.plan.model import SCHEMA_REGISTRY_PASSWORD_ENV, SCHEMA_REGISTRY_USERNAME_ENV, Plan, SubjectPlan
from infra.program.protection import kept

SERVICE_ACCOUNT_API_VERSION = "iam/v2"
SERVICE_ACCOUNT_KIND = "ServiceAccount"


class ConfluentSchemas(pulumi.ComponentResource):
    """The stack's subjects in its environment's Schema Registry."""

    endpoint: pulumi.Output[str]
    # Per service that writes or reads a subject: its registry key, by the env var carrying it.
    logins: dict[str, dict[str, pulumi.Output[str]]]

    def __init__(
        self,
        plan: Plan,
        environment_id: pulumi.Input[str],
        admin_id: pulumi.Input[str],
        accounts: dict[str, pulumi.Output[str]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kafka-platform:confluent:Schemas", "schemas", None, opts)
        registry = confluent.get_schema_registry_cluster_output(
            environment=pulumi.Output.from_input(environment_id).apply(
                lambda env_id: confluent.GetSchemaRegistryClusterEnvironmentArgs(id=env_id)
            ),
            opts=pulumi.InvokeOptions(parent=self),
        )
        admin_principal = pulumi.Output.from_input(admin_id).apply(lambda sa_id: f"User:{sa_id}")
        principals = {
            name: account.apply(lambda sa_id: f"User:{sa_id}") for name, account in accounts.items()
        }
        owner = [
            confluent.RoleBinding(
                f"admin-subject-{subject.subject}",
                principal=admin_principal,
                role_name="ResourceOwner",
                crn_pattern=subject_crn(registry.resource_name, subject),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for subject in plan.subjects
        ]
        managed_registry = confluent.ApiKeyManagedResourceArgs(
            id=registry.id,
            api_version=registry.api_version,
            kind=registry.kind,
            environment=confluent.ApiKeyManagedResourceEnvironmentArgs(id=environment_id),
        )
        admin_key = confluent.ApiKey(
            "admin-schema-registry-key",
            display_name=f"{plan.cluster.admin_principal}-schema-registry",
            description="kafka-platform admin key (the stack's Schema Registry subjects)",
            owner=confluent.ApiKeyOwnerArgs(
                id=admin_id, api_version=SERVICE_ACCOUNT_API_VERSION, kind=SERVICE_ACCOUNT_KIND
            ),
            managed_resource=managed_registry,
            opts=pulumi.ResourceOptions(parent=self, depends_on=owner),
        )
        self.endpoint = registry.rest_endpoint
        self.logins = {}
        users = sorted(
            {name for subject in plan.subjects for name in (*subject.producers, *subject.consumers)}
        )
        for service in users:
            key = confluent.ApiKey(
                f"schema-registry-key-{service}",
                display_name=f"{plan.service(service).principal}-schema-registry",
                description=f"Schema Registry API key of service '{service}'",
                owner=confluent.ApiKeyOwnerArgs(
                    id=accounts[service], api_version=SERVICE_ACCOUNT_API_VERSION, kind=SERVICE_ACCOUNT_KIND
                ),
                managed_resource=managed_registry,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.logins[service] = {
                SCHEMA_REGISTRY_USERNAME_ENV: key.id,
                SCHEMA_REGISTRY_PASSWORD_ENV: pulumi.Output.secret(key.secret),
            }
        # One provider bound to the registry and the admin key, so no schema carries the secret.
        provider = confluent.Provider(
            "schema-registry-admin",
            schema_registry_id=registry.id,
            schema_registry_rest_endpoint=registry.rest_endpoint,
            schema_registry_api_key=admin_key.id,
            schema_registry_api_secret=admin_key.secret,
            opts=pulumi.ResourceOptions(parent=self),
        )
        managed = kept(plan, self).merge(pulumi.ResourceOptions(provider=provider))
        for subject in plan.subjects:
            level = confluent.SubjectConfig(
                f"subject-config-{subject.subject}",
                subject_name=subject.subject,
                compatibility_level=subject.compatibility,
                opts=managed,
            )
            # Registered once its level is set, so the registry judges it by the planned level.
            confluent.Schema(
                f"schema-{subject.subject}",
                subject_name=subject.subject,
                format=subject.format,
                schema=subject.definition,
                opts=managed.merge(pulumi.ResourceOptions(depends_on=[level])),
            )
            for role, services in (
                ("DeveloperWrite", subject.producers),
                ("DeveloperRead", subject.consumers),
            ):
                for service in services:
                    confluent.RoleBinding(
                        f"{service}-{role}-subject-{subject.subject}",
                        principal=principals[service],
                        role_name=role,
                        crn_pattern=subject_crn(registry.resource_name, subject),
                        opts=pulumi.ResourceOptions(parent=self),
                    )
        self.register_outputs({})


def subject_crn(registry_crn: pulumi.Input[str], subject: SubjectPlan) -> pulumi.Output[str]:
    """The role binding scope of one subject: `<registry resource name>/subject=<subject>`."""
    return pulumi.Output.from_input(registry_crn).apply(lambda crn: f"{crn}/subject={subject.subject}")
