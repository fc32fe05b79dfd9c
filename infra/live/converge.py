"""Bring a running broker to a plan, as `make local` does on every run: create what is missing,
alter what differs, delete only when asked (``prune``), and refuse what Kafka cannot do (fewer
partitions) before changing anything. Every call goes through the Kafka-admin core
(`cluster_admin`), as the Pulumi providers' do.

Users are always given the password the caller names (the local stack's `.env`), so editing a
local password takes effect on the next run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from confluent_kafka.admin import AdminClient

from infra.live.cluster_admin import (
    Grant,
    ScramCredential,
    alter_topic_configs,
    create_grants,
    create_topics,
    delete_grants,
    delete_scram_users,
    delete_topics,
    grow_partitions,
    read_scram_users,
    upsert_scram_users,
)
from infra.live.drift import TopicDifference, topic_differences
from infra.live.live_cluster import LiveCluster
from infra.plan.model import AclBinding, Plan


class ConvergeRefused(Exception):
    """The plan asks for something the broker cannot do in place; nothing was changed."""


@dataclass
class Changes:
    lines: list[str] = field(default_factory=list)
    left_alone: list[str] = field(default_factory=list)  # what only `prune` would delete


def planned_grant(acl: AclBinding, principal: str | None = None) -> Grant:
    """A planned ACL as the core grants it; ``principal``: another generation's user of its service."""
    return Grant(
        f"User:{principal or acl.principal}",
        acl.operation,
        acl.resource_type,
        acl.resource_name,
        acl.pattern_type,
        acl.host,
    )


def converge(
    admin: AdminClient,
    plan: Plan,
    live: LiveCluster,
    users: dict[str, str],
    mechanisms: tuple[str, ...],
    *,
    prune: bool = False,
    former_owners: Sequence[tuple[str, str]] = (),
) -> Changes:
    """``users``: every SCRAM user the broker must have (name -> password); ``live``: what the
    broker held just before; ``former_owners``: other (domain, stack) pairs whose topics, users
    and grants this broker holds for the caller (the domain before a rename). Returns what was
    changed, in the order it was done."""
    changes = Changes()
    differences = [
        difference
        for topic in plan.topics
        if topic.name in live.topics
        for difference in topic_differences(topic, live.topics[topic.name])
    ]
    decreases = [
        f"{d.topic}: {d.live} partitions on the broker, {d.planned} planned"
        for d in differences
        if d.setting == "partitions" and int(d.planned) < int(d.live)
    ]
    if decreases:
        raise ConvergeRefused(
            "Kafka cannot remove partitions, so nothing was changed: "
            + "; ".join(decreases)
            + " (delete the topic with `make local-reset`, or plan at least as many)"
        )
    missing = [topic for topic in plan.topics if topic.name not in live.topics]
    create_topics(
        admin,
        {
            t.name: {
                "partitions": t.partitions,
                "replication_factor": t.replication_factor,
                "config": t.config,
            }
            for t in missing
        },
    )
    changes.lines += [f"created topic {t.name} ({t.partitions} partitions)" for t in missing]
    _grow_and_alter(admin, differences, changes)
    changes.lines += [f"created user {name}" for name in set_passwords(admin, users, mechanisms)]
    present = {acl.grant() for acl in live.acls}
    new = [grant for grant in sorted({planned_grant(acl) for acl in plan.acls}) if grant not in present]
    create_grants(admin, new)
    changes.lines += [f"granted {grant.text.removeprefix('User:')}" for grant in new]
    _unplanned(admin, plan, live, users, changes, prune=prune, former_owners=former_owners)
    return changes


def _grow_and_alter(admin: AdminClient, differences: list[TopicDifference], changes: Changes) -> None:
    grow = [d for d in differences if d.setting == "partitions"]
    grow_partitions(admin, {d.topic: int(d.planned) for d in grow})
    changes.lines += [f"partitions of {d.topic}: {d.live} -> {d.planned}" for d in grow]
    configs: dict[str, dict[str, str]] = {}
    for d in differences:
        if d.setting not in ("partitions", "replication_factor"):
            configs.setdefault(d.topic, {})[d.setting] = d.planned
            changes.lines.append(f"config of {d.topic}: {d.setting} {d.live} -> {d.planned}")
        elif d.setting == "replication_factor":
            changes.left_alone.append(
                f"{d.topic}: replication {d.live}, planned {d.planned} (a single broker keeps 1)"
            )
    alter_topic_configs(admin, configs)


def set_passwords(admin: AdminClient, users: dict[str, str], mechanisms: tuple[str, ...]) -> list[str]:
    """Give each user this password for each mechanism; returns the users that were new."""
    existing = set(read_scram_users(admin))
    upsert_scram_users(
        admin, {name: ScramCredential(mechanisms, password) for name, password in users.items()}
    )
    return [name for name in sorted(users) if name not in existing]


def _unplanned(
    admin: AdminClient,
    plan: Plan,
    live: LiveCluster,
    users: dict[str, str],
    changes: Changes,
    *,
    prune: bool,
    former_owners: Sequence[tuple[str, str]],
) -> None:
    """Topics under the stack's domain, ACLs of its principals and its users that the plan no
    longer has (and all of a former domain's): deleted with ``prune``, otherwise listed as left
    alone."""
    owners = [(plan.domain, plan.stack)] + [
        owner for owner in former_owners if owner != (plan.domain, plan.stack)
    ]
    planned_topics = {topic.name for topic in plan.topics}
    planned = {planned_grant(acl) for acl in plan.acls}
    scram_users = read_scram_users(admin)
    found: list[tuple[str, str]] = []  # (what, why it is not the plan's)
    topics: list[str] = []
    grants: list[Grant] = []
    stale_users: list[str] = []
    for domain, stack in owners:
        why = (
            "is not in the plan"
            if domain == plan.domain
            else f"belongs to domain '{domain}', which topology.yaml no longer names"
        )
        # The stack's principals are named "<domain>.<stack>.<service>": also those of dropped services.
        user_prefix = f"{domain}.{stack}."
        owned_topics = sorted(
            name
            for name in live.topics
            if name.startswith(f"{domain}.") and name not in planned_topics and name not in topics
        )
        owned_acls = [
            acl
            for acl in live.acls
            if acl.principal.startswith(f"User:{user_prefix}") and acl.grant() not in planned
        ]
        owned_users = sorted(
            name for name in scram_users if name.startswith(user_prefix) and name not in users
        )
        found += (
            [(f"topic {name}", why) for name in owned_topics]
            + [(f"ACL {acl}", why) for acl in owned_acls]
            + [(f"user {name}", why) for name in owned_users]
        )
        topics += owned_topics
        grants += [acl.grant() for acl in owned_acls]
        stale_users += owned_users
    if not prune:
        changes.left_alone += [f"{what} {why}" for what, why in found]
        return
    delete_topics(admin, topics)
    delete_grants(admin, grants)
    delete_scram_users(admin, stale_users)
    changes.lines += [f"deleted {what}" for what, _ in found]
