"""What MSK and existing clusters both do through the Kafka Admin API: topics in groups of one
family each (`Topics`), and per service its SCRAM users and ACLs (`ServiceAccess`), each group
applied with batched calls by the dynamic providers in `admin_api_provider`.

Why groups and not one resource per topic and ACL: docs/performance.md (a 1,000-topic estate is
3,305 resources that way, and the engine's cost per resource, not Kafka, sets the pace).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby

import pulumi
import pulumi.dynamic

from infra.plan.credential_rotation import Generations
from infra.plan.model import AclBinding, Plan, PlannedTopic
from infra.program.admin_api_provider import ServiceAccessProvider, TopicsProvider, acl_text
from infra.program.previous_deployment import PreviousDeployment
from infra.program.protection import kept

SECRET_OUTPUTS = ["admin_password", "passwords"]


@dataclass(frozen=True)
class AdminConnection:
    """How Pulumi reaches the brokers as the platform's admin identity."""

    bootstrap_servers: pulumi.Input[Sequence[str]]
    username: pulumi.Input[str]
    password: pulumi.Output[str]
    sasl_mechanism: str  # SCRAM-SHA-512 | SCRAM-SHA-256 | PLAIN
    tls: bool
    ca_cert: pulumi.Input[str] | None = None
    skip_tls_verify: bool = False

    def inputs(self) -> dict[str, pulumi.Input[object]]:
        return {
            "connection": {
                "bootstrap_servers": self.bootstrap_servers,
                "security_protocol": "SASL_SSL" if self.tls else "SASL_PLAINTEXT",
                "sasl_mechanism": self.sasl_mechanism,
                "username": self.username,
                "ca_cert": self.ca_cert,
                "skip_tls_verify": self.skip_tls_verify,
            },
            "admin_password": pulumi.Output.secret(self.password),  # type: ignore[arg-type]
        }


class Topics(pulumi.dynamic.Resource, module="kafka", name="Topics"):
    """The topics of one family (`user.events`, `user.profile` → family `user`)."""

    def __init__(
        self,
        family: str,
        topics: Sequence[PlannedTopic],
        connection: AdminConnection,
        *,
        adopt: Sequence[str],
        protected: bool,
        allowed_removals: Sequence[str],
        opts: pulumi.ResourceOptions,
    ) -> None:
        props = {
            **connection.inputs(),
            "family": family,
            "topics": {topic.name: topic_spec(topic) for topic in topics},
            "adopt": sorted(adopt),
            "removal": "keep" if protected else "delete",
            "allowed_removals": sorted(allowed_removals),
        }
        secret = pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)
        super().__init__(TopicsProvider(), f"topics-{family}", props, opts.merge(secret))


class ServiceAccess(pulumi.dynamic.Resource, module="kafka", name="ServiceAccess"):
    """One service's ACLs, and on clusters whose users live in Kafka its SCRAM users, for every
    credential generation still valid."""

    def __init__(
        self,
        service: str,
        principals: Sequence[str],
        acls: Sequence[str],
        connection: AdminConnection,
        *,
        users: Mapping[str, ScramUser] | None = None,
        opts: pulumi.ResourceOptions,
    ) -> None:
        users = users or {}
        props = {
            **connection.inputs(),
            "service": service,
            "principals": sorted(f"User:{principal}" for principal in principals),
            # Keyed by the binding, so a preview shows each grant added or removed by itself.
            "acls": dict.fromkeys(sorted(acls), "ALLOW"),
            "users": {name: [user.mechanism] for name, user in sorted(users.items())},
            "passwords": pulumi.Output.secret({name: user.password for name, user in sorted(users.items())}),
        }
        secret = pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)
        super().__init__(ServiceAccessProvider(), f"access-{service}", props, opts.merge(secret))


@dataclass(frozen=True)
class ScramUser:
    mechanism: str
    password: pulumi.Input[str]


def topic_spec(topic: PlannedTopic) -> dict[str, object]:
    return {
        "partitions": topic.partitions,
        "replication_factor": topic.replication_factor,
        "config": dict(sorted(topic.config.items())),
    }


def family(topic_key: str) -> str:
    return topic_key.split(".", 1)[0]


def family_of_name(plan: Plan, topic_name: str) -> str | None:
    """The family of a topic named in this stack's namespace, also one the plan no longer has."""
    namespace = f"{plan.name_prefix}{plan.domain}."
    return family(topic_name.removeprefix(namespace)) if topic_name.startswith(namespace) else None


def plan_acl_text(acl: AclBinding, principal: str) -> str:
    return acl_text(
        f"User:{principal}", acl.operation, acl.resource_type, acl.resource_name, acl.pattern_type
    )


def manage_topics(
    plan: Plan,
    connection: AdminConnection,
    parent: pulumi.Resource,
    previous: PreviousDeployment,
    after: Sequence[pulumi.Resource] = (),
) -> list[Topics]:
    """Every planned topic, one `Topics` per family (kept and retained in protected stacks).
    What settings.adopt lists, and what a just-migrated stack had, is converged to the plan if it
    exists; any other existing topic must already match the plan."""
    options = kept(plan, parent, retain=True).merge(pulumi.ResourceOptions(depends_on=list(after)))
    # Not every topic the stack deployed before: a list that grows after each first `up` would
    # change the inputs of every group once, and each such step rewrites the checkpoint.
    adoptable = set(plan.adoption.topics) | set(previous.migrated_topics())
    by_family = groupby(
        sorted(plan.topics, key=lambda t: (family(t.key), t.name)), key=lambda t: family(t.key)
    )
    groups = []
    for name, members in by_family:
        topics = list(members)
        groups.append(
            Topics(
                name,
                topics,
                connection,
                adopt=[topic.name for topic in topics if topic.name in adoptable],
                protected=plan.protection.protect,
                allowed_removals=[
                    topic
                    for topic in plan.protection.allowed_topic_deletes
                    if family_of_name(plan, topic) == name
                ],
                opts=options,
            )
        )
    return groups


def manage_service_access(
    plan: Plan,
    connection: AdminConnection,
    parent: pulumi.Resource,
    generations: Generations,
    *,
    users: Mapping[str, Mapping[str, ScramUser]] | None = None,
    after: Sequence[pulumi.Resource] = (),
) -> dict[str, ServiceAccess]:
    """Per service: its ACLs for each valid credential generation (while a rotated credential's
    previous generation is still valid, its principal keeps the same ACLs), and ``users``."""
    options = kept(plan, parent).merge(pulumi.ResourceOptions(depends_on=list(after)))
    valid = [generations.current] + ([generations.previous] if generations.previous is not None else [])
    access = {}
    for service in plan.services:
        principals = [plan.principal_at(service.name, generation) for generation in valid]
        acls = [
            plan_acl_text(acl, principal)
            for acl in plan.acls
            if acl.service == service.name
            for principal in principals
        ]
        access[service.name] = ServiceAccess(
            service.name,
            principals,
            acls,
            connection,
            users=(users or {}).get(service.name),
            opts=options,
        )
    return access
