"""A stack's Schema Registry read before any resource is registered (like `kafka_preflight` for
the cluster): the dynamic provider behind `SchemaSubjects` gets no preview of its own, so what it
would refuse is refused here, in `preview` and before the first change of an `up`:
- the registry answers (with the stack's login);
- no planned subject exists there that is not the stack's: registered by its last deployment in
  the same registry, or adopted (settings.adopt.subjects). As strict as the provider, whatever
  the subject holds, even exactly the planned schema: an interrupted `up` leaves no subject of
  its own behind, since a failed create soft-deletes what it registered.
"""

from __future__ import annotations

from collections.abc import Callable

import pulumi

from infra.live.schema_registry import RegistryError, RegistryLogin, RegistryUnreachable, SchemaRegistry
from infra.plan.model import SCHEMA_REGISTRY_OUTPUT, Plan
from infra.program.previous_deployment import (
    SCHEMA_SUBJECTS_OUTPUT,
    PreviousDeployment,
)
from infra.program.schema_registry_provider import foreign_subjects_refusal

RegistryCheck = Callable[[Plan, PreviousDeployment], None]


def schema_registry_problems(login: RegistryLogin, plan: Plan, previous: PreviousDeployment) -> list[str]:
    """Why this deployment must not start on the registry behind ``login`` (empty when it may)."""
    registry = SchemaRegistry(login)
    owned = set(plan.schema_registry.adopt if plan.schema_registry is not None else ())
    if previous.outputs.get(SCHEMA_REGISTRY_OUTPUT) == login.url:
        owned |= set(previous.names(SCHEMA_SUBJECTS_OUTPUT) or ())
    try:
        existing = set(registry.subjects())
        foreign = [s.subject for s in plan.subjects if s.subject in existing and s.subject not in owned]
    except (RegistryUnreachable, RegistryError) as exc:
        return [str(exc)]
    return [foreign_subjects_refusal(foreign, login.url)] if foreign else []


def check_schema_registry(plan: Plan, previous: PreviousDeployment) -> None:
    registry = plan.schema_registry
    if registry is None or not plan.subjects or plan.cluster.provider == "local":
        return
    password = ""
    if registry.password_config is not None:
        value = pulumi.runtime.get_config(registry.password_config)
        if value is None:
            return  # validation has refused the stack already
        password = str(value)
    login = RegistryLogin(url=registry.url, username=registry.username or "", password=password)
    problems = schema_registry_problems(login, plan, previous)
    if problems:
        raise pulumi.RunError("refused before any change was made:\n" + "\n".join(problems))
