"""Bring a running broker to a plan, as `make local` does on every run: create what is missing,
alter what differs, delete only when asked (``prune``), and refuse what Kafka cannot do (fewer
partitions) before changing anything.

Users are always given the password the caller names (the local stack's `.env`), so editing a
local password takes effect on the next run.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    NewPartitions,
    NewTopic,
    ScramCredentialInfo,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from infra.live.apply_plan import MECHANISMS, SCRAM_ITERATIONS, acl_bindings, delete_acls, set_topic_configs
from infra.live.drift import TopicDifference, topic_differences
from infra.live.live_cluster import LiveCluster, acl_binding
from infra.plan.model import AclBinding, Plan

REQUEST_TIMEOUT_S = 30


class ConvergeRefused(Exception):
    """The plan asks for something the broker cannot do in place; nothing was changed."""


@dataclass
class Changes:
    lines: list[str] = field(default_factory=list)
    left_alone: list[str] = field(default_factory=list)  # what only `prune` would delete


def converge(
    admin: AdminClient,
    plan: Plan,
    live: LiveCluster,
    users: dict[str, str],
    mechanisms: tuple[str, ...],
    *,
    prune: bool = False,
) -> Changes:
    """``users``: every SCRAM user the broker must have (name -> password); ``live``: what the
    broker held just before. Returns what was changed, in the order it was done."""
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
    _create_topics(admin, plan, live, changes)
    _grow_and_alter(admin, differences, changes)
    changes.lines += [f"created user {name}" for name in set_passwords(admin, users, mechanisms)]
    _create_acls(admin, plan, live, changes)
    _unplanned(admin, plan, live, users, changes, prune=prune)
    return changes


def _wait(futures: Mapping[Any, Future[Any]]) -> None:
    for future in futures.values():
        future.result()


def _create_topics(admin: AdminClient, plan: Plan, live: LiveCluster, changes: Changes) -> None:
    missing = [topic for topic in plan.topics if topic.name not in live.topics]
    if missing:
        new = [NewTopic(t.name, t.partitions, t.replication_factor, config=t.config) for t in missing]
        _wait(admin.create_topics(new, request_timeout=REQUEST_TIMEOUT_S))
    changes.lines += [f"created topic {t.name} ({t.partitions} partitions)" for t in missing]


def _grow_and_alter(admin: AdminClient, differences: list[TopicDifference], changes: Changes) -> None:
    grow = [d for d in differences if d.setting == "partitions"]
    if grow:
        _wait(admin.create_partitions([NewPartitions(d.topic, int(d.planned)) for d in grow]))
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
    set_topic_configs(admin, configs)


def set_passwords(admin: AdminClient, users: dict[str, str], mechanisms: tuple[str, ...]) -> list[str]:
    """Give each user this password for each mechanism; returns the users that were new."""
    existing = set(admin.describe_user_scram_credentials(request_timeout=REQUEST_TIMEOUT_S).result())
    # One request per mechanism: a request may alter each user's credentials only once.
    for mechanism in mechanisms:
        upserts = [
            UserScramCredentialUpsertion(
                name, ScramCredentialInfo(MECHANISMS[mechanism], SCRAM_ITERATIONS), password.encode()
            )
            for name, password in sorted(users.items())
        ]
        if upserts:
            _wait(admin.alter_user_scram_credentials(upserts, request_timeout=REQUEST_TIMEOUT_S))
    return [name for name in sorted(users) if name not in existing]


def _create_acls(admin: AdminClient, plan: Plan, live: LiveCluster, changes: Changes) -> None:
    present = {
        _key(acl.principal, acl.resource_type, acl.resource_name, acl.pattern_type, acl.operation)
        for acl in live.acls
        if acl.permission == "ALLOW" and acl.host == "*"
    }
    missing = [
        (acl, binding)
        for acl, binding in zip(plan.acls, acl_bindings(plan), strict=True)
        if _key(
            f"User:{acl.principal}", acl.resource_type, acl.resource_name, acl.pattern_type, acl.operation
        )
        not in present
    ]
    if missing:
        _wait(admin.create_acls([binding for _, binding in missing], request_timeout=REQUEST_TIMEOUT_S))
    changes.lines += [
        f"granted {acl.principal} {acl.operation} {acl.resource_type} {acl.resource_name}"
        + ("*" if acl.pattern_type == "PREFIXED" else "")
        for acl, _ in missing
    ]


def _planned_key(acl: AclBinding) -> str:
    return _key(
        f"User:{acl.principal}", acl.resource_type, acl.resource_name, acl.pattern_type, acl.operation
    )


def _key(principal: str, resource_type: str, name: str, pattern: str, operation: str) -> str:
    return f"{principal}|{resource_type}|{name}|{pattern}|{operation}"


def _unplanned(
    admin: AdminClient, plan: Plan, live: LiveCluster, users: dict[str, str], changes: Changes, *, prune: bool
) -> None:
    """Topics under the stack's domain, ACLs of its principals and its users that the plan no
    longer has: deleted with ``prune``, otherwise listed as left alone."""
    planned_topics = {topic.name for topic in plan.topics}
    topics = sorted(
        name for name in live.topics if name.startswith(f"{plan.domain}.") and name not in planned_topics
    )
    # The stack's principals are named "<domain>.<stack>.<service>": also those of dropped services.
    user_prefix = f"{plan.domain}.{plan.stack}."
    planned_acls = {_planned_key(acl) for acl in plan.acls}
    acls = [
        acl
        for acl in live.acls
        if acl.principal.startswith(f"User:{user_prefix}")
        and _key(acl.principal, acl.resource_type, acl.resource_name, acl.pattern_type, acl.operation)
        not in planned_acls
    ]
    stale_users = sorted(
        name
        for name in admin.describe_user_scram_credentials(request_timeout=REQUEST_TIMEOUT_S).result()
        if name.startswith(user_prefix) and name not in users
    )
    found = (
        [f"topic {name}" for name in topics]
        + [f"ACL {acl}" for acl in acls]
        + [f"user {name}" for name in stale_users]
    )
    if not prune:
        changes.left_alone += [f"{what} is not in the plan" for what in found]
        return
    if topics:
        _wait(admin.delete_topics(topics, request_timeout=REQUEST_TIMEOUT_S))
    if acls:
        delete_acls(admin, [acl_binding(acl) for acl in acls])
    for mechanism in MECHANISMS.values() if stale_users else ():
        deletions = [UserScramCredentialDeletion(name, mechanism) for name in stale_users]
        for future in admin.alter_user_scram_credentials(deletions).values():
            try:
                future.result()
            except KafkaException as error:  # a user without this mechanism
                if error.args[0].code() != KafkaError.RESOURCE_NOT_FOUND:
                    raise
    changes.lines += [f"deleted {what}" for what in found]
