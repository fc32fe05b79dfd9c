"""A stack's Schema Registry subjects (MSK and existing clusters): one `SchemaSubjects`
resource holding every subject, its compatibility level and schema, applied by the dynamic
provider in `schema_registry_provider`; and the registry login each service's Secret carries."""

from __future__ import annotations

import pulumi
import pulumi.dynamic

from infra.plan.model import SCHEMA_REGISTRY_PASSWORD_ENV, SCHEMA_REGISTRY_USERNAME_ENV, Plan
from infra.program.schema_registry_provider import SubjectsProvider


class SchemaSubjects(pulumi.dynamic.Resource, module="schemas", name="Subjects"):
    """Every subject of the stack in its registry, in the plan's order."""

    def __init__(self, plan: Plan, opts: pulumi.ResourceOptions | None = None) -> None:
        registry = plan.schema_registry
        if registry is None:
            raise ValueError("the plan names no schema registry")
        props = {
            "registry": {"url": registry.url, "username": registry.username},
            "password_config": registry.password_config,
            "subjects": {
                subject.subject: {"schema": subject.definition, "compatibility": subject.compatibility}
                for subject in plan.subjects
            },
            "adopt": list(registry.adopt),
            # A protected stack releases a subject it drops instead of soft-deleting it.
            "removal": "keep" if plan.protection.protect else "delete",
        }
        protect = plan.protection.protect
        kept = pulumi.ResourceOptions(protect=protect, retain_on_delete=protect)
        super().__init__(SubjectsProvider(), "schema-subjects", props, kept.merge(opts))


def manage_subjects(plan: Plan) -> SchemaSubjects | None:
    """The stack's subjects, where it names a registry and has any (a local stack's registry
    runs outside Pulumi, like its broker: `local up` registers them)."""
    if plan.schema_registry is None or not plan.subjects or plan.cluster.provider == "local":
        return None
    return SchemaSubjects(plan)


def registry_secret_env(plan: Plan) -> dict[str, pulumi.Output[str]]:
    """What a service's Secret carries of the registry login, by env var."""
    registry = plan.schema_registry
    if registry is None or registry.username is None or registry.password_config is None:
        return {}
    project, name = registry.password_config.split(":", 1)
    return {
        SCHEMA_REGISTRY_USERNAME_ENV: pulumi.Output.from_input(registry.username),
        SCHEMA_REGISTRY_PASSWORD_ENV: pulumi.Config(project).require_secret(name),
    }
