"""Prod safety: protect what matters, keep topics on delete, refuse unplanned deletions."""

from __future__ import annotations

from collections.abc import Iterable

import pulumi

from infra.plan import Plan

TOPIC_NAMES_OUTPUT = "topic_names"
SERVICES_OUTPUT = "services"


def kept(plan: Plan, parent: pulumi.Resource, *, retain: bool = False) -> pulumi.ResourceOptions:
    """Options for a resource whose loss would hurt: clusters, topics, service accounts."""
    protect = plan.protection.protect
    return pulumi.ResourceOptions(parent=parent, protect=protect, retain_on_delete=protect and retain)


def refused_deletes(
    previous: Iterable[str] | None, current: Iterable[str], allowed: Iterable[str]
) -> list[str]:
    """What the last deployment had, this one drops, and the settings do not allow."""
    return sorted(set(previous or ()) - set(current) - set(allowed))


def guard_deletes(plan: Plan) -> None:
    """In protected stacks, refuse to drop a topic or service the last deployment exported.

    The previous outputs come from a StackReference to this same stack; on the first
    deployment there are none and nothing is refused.
    """
    if not plan.protection.protect:
        return
    stack = pulumi.get_stack()
    own = pulumi.StackReference(
        "previous-deployment", stack_name=f"{pulumi.get_organization()}/{pulumi.get_project()}/{stack}"
    )
    checks = (
        ("topics", TOPIC_NAMES_OUTPUT, [t.name for t in plan.topics], plan.protection.allowed_topic_deletes),
        (
            "services",
            SERVICES_OUTPUT,
            [s.name for s in plan.services],
            plan.protection.allowed_service_deletes,
        ),
    )
    for kind, output, current, allowed in checks:

        def check(
            previous: object, kind: str = kind, current: list[str] = current, allowed: list[str] = allowed
        ) -> None:
            removed = refused_deletes(previous if isinstance(previous, list) else None, current, allowed)
            if removed:
                raise pulumi.RunError(
                    f"stack '{stack}' would delete {kind} {', '.join(removed)}; add them to "
                    f"settings.protection.allow_deletes.{kind} to retire them on purpose"
                )

        own.get_output(output).apply(check)
