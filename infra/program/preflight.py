"""Changes refused before any resource is registered, judged against the last deployment."""

from __future__ import annotations

from collections.abc import Iterable

import pulumi

from infra.model.names import PLATFORM_MIRROR
from infra.model.settings import MskSettings
from infra.plan.model import Plan
from infra.program.previous_deployment import (
    MIGRATION_MIRROR_OUTPUT,
    SERVICES_OUTPUT,
    TOPIC_NAMES_OUTPUT,
    PreviousDeployment,
)
from infra.program.state_migration import GROUPED_PROVIDERS


def refused_deletes(
    previous: Iterable[str] | None, current: Iterable[str], allowed: Iterable[str]
) -> list[str]:
    """What the last deployment had, this one drops, and the settings do not allow."""
    return sorted(set(previous or ()) - set(current) - set(allowed))


def unsafe_changes(plan: Plan, previous: PreviousDeployment) -> list[str]:
    """Why this deployment must not start; empty when it may."""
    problems: list[str] = []
    if plan.cluster.provider in GROUPED_PROVIDERS and previous.needs_state_migration():
        problems.append(
            f"stack '{plan.stack}' was deployed by a release that kept every topic, ACL and SCRAM user "
            "as its own resource, and this `up` would delete them: first run "
            f"`kafka-platform migrate-state --stack {plan.stack}` "
            '(docs/deploying.md, "Moving a stack deployed before grouping")'
        )
    if plan.protection.protect:
        checks = (
            (
                "topics",
                TOPIC_NAMES_OUTPUT,
                [t.name for t in plan.topics],
                plan.protection.allowed_topic_deletes,
            ),
            (
                "services",
                SERVICES_OUTPUT,
                [s.name for s in plan.services],
                plan.protection.allowed_service_deletes,
            ),
        )
        for kind, output, current, allowed in checks:
            removed = refused_deletes(previous.names(output), current, allowed)
            if removed:
                problems.append(
                    f"stack '{plan.stack}' would delete {kind} {', '.join(removed)}; add them to "
                    f"settings.protection.allow_deletes.{kind} to retire them on purpose"
                )
        mirror = previous.outputs.get(MIGRATION_MIRROR_OUTPUT)
        if (
            mirror
            and plan.migration is None
            and PLATFORM_MIRROR not in plan.protection.allowed_service_deletes
        ):
            problems.append(
                f"stack '{plan.stack}' would end its migration: MirrorMaker 2 stops and its principal "
                f"{mirror} and grants go from both clusters; add {PLATFORM_MIRROR} to "
                "settings.protection.allow_deletes.services to finish it on purpose"
            )

    # Kafka cannot remove partitions: both providers would replace the topic, and
    # create-before-delete fails on the existing name (and would drop its data if it did not).
    before = previous.topic_partitions()
    for topic in plan.topics:
        was = before.get(topic.name)
        if was is not None and topic.partitions < was:
            problems.append(
                f"topic {topic.name} would shrink from {was} to {topic.partitions} partitions; Kafka cannot "
                f"remove partitions and the provider would delete and recreate the topic. Keep {was}, "
                "or create a new topic and move its producers and consumers"
            )

    msk = plan.cluster.provider_settings
    if isinstance(msk, MskSettings) and msk.access == "public" and not previous.has_cluster():
        problems.append(
            "kafka.msk.access is 'public', but this stack has no MSK cluster yet: AWS turns public "
            "access on only for an existing cluster. Deploy with access 'vpc' from inside the VPC "
            "first, then switch to 'public'"
        )
    return problems


def refuse_unsafe_changes(plan: Plan, previous: PreviousDeployment) -> None:
    problems = unsafe_changes(plan, previous)
    if problems:
        raise pulumi.RunError("refused before any change was made:\n" + "\n".join(problems))
