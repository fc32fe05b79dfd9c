"""What MSK and existing clusters both do through the Kafka Admin API: topics in groups of one
family each (`Topics`), and per service its SCRAM users and ACLs (`ServiceAccess`), each group
applied with batched calls by the dynamic providers in `admin_api_provider`.

Why groups and not one resource per topic and ACL: docs/performance.md (a 1,000-topic estate is
3,305 resources that way, and the engine's cost per resource, not Kafka, sets the pace).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import pulumi
import pulumi.dynamic
import pulumi_random as random

from infra.live.converge import planned_grant
from infra.model.cluster_connection import ExistingClusterSettings
from infra.model.names import PLATFORM_MIRROR, generation_suffix
from infra.plan.credential_rotation import Generations
from infra.plan.model import AclBinding, MirrorSide, Plan, PlannedTopic
from infra.program.admin_api_provider import ServiceAccessProvider, TopicsProvider
from infra.program.cluster_access import ServiceCredentials
from infra.program.previous_deployment import SERVICES_OUTPUT, TOPIC_NAMES_OUTPUT, PreviousDeployment
from infra.program.protection import kept

SECRET_OUTPUTS = ["admin_password", "passwords"]
PASSWORD_LENGTH = 32


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
    # The stack config key that holds the password (existing clusters): the providers read it
    # from the configuration at every call, so the state never holds it and a rotation works
    # for resources the program no longer registers. MSK's generated admin has no such key.
    password_config: str | None = None

    def inputs(self) -> dict[str, pulumi.Input[object]]:
        if self.password_config is not None:
            return {**self._connection(), "admin_password_config": self.password_config}
        return {**self._connection(), "admin_password": pulumi.Output.secret(self.password)}  # type: ignore[arg-type]

    def _connection(self) -> dict[str, pulumi.Input[object]]:
        return {
            "connection": {
                "bootstrap_servers": self.bootstrap_servers,
                "security_protocol": "SASL_SSL" if self.tls else "SASL_PLAINTEXT",
                "sasl_mechanism": self.sasl_mechanism,
                "username": self.username,
                "ca_cert": self.ca_cert,
                "skip_tls_verify": self.skip_tls_verify,
            },
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
        adopt_users: Sequence[str] = (),
        resource_prefix: str = "",
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
            # Users that exist already and whose password this deployment may reset.
            "adopt_users": sorted(name for name in adopt_users if name in users),
        }
        secret = pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)
        super().__init__(
            ServiceAccessProvider(), f"{resource_prefix}access-{service}", props, opts.merge(secret)
        )


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
    return planned_grant(acl, principal).text


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
                # All of them: the provider only looks up the topics its state holds, and a topic
                # with a `name:` of its own has no family to be found by.
                allowed_removals=list(plan.protection.allowed_topic_deletes),
                opts=options,
            )
        )
    # A protected stack retiring the last topics of a family (the preflight has checked that
    # allow_deletes names them): the group stays registered once more, empty and unprotected, so
    # its update releases them; the next run no longer registers it and the engine deletes the
    # empty group. Unregistered at once, it would be a protected resource to delete.
    if plan.protection.protect:
        planned = {family(topic.key) for topic in plan.topics}
        families = previous.topic_families()
        before = {
            families.get(name) or family_of_name(plan, name)
            for name in previous.names(TOPIC_NAMES_OUTPUT) or ()
        }
        for name in sorted(f for f in before - planned if f is not None):
            groups.append(
                Topics(
                    name,
                    [],
                    connection,
                    adopt=[],
                    protected=True,
                    allowed_removals=list(plan.protection.allowed_topic_deletes),
                    opts=retiring(parent, after),
                )
            )
    return groups


def retiring(parent: pulumi.Resource, after: Sequence[pulumi.Resource]) -> pulumi.ResourceOptions:
    """Options for a group whose last members leave a protected stack on purpose."""
    return pulumi.ResourceOptions(parent=parent, protect=False, retain_on_delete=True, depends_on=list(after))


def manage_service_access(
    plan: Plan,
    connection: AdminConnection,
    parent: pulumi.Resource,
    generations: Generations,
    previous: PreviousDeployment,
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
            adopt_users=plan.adoption.users,
            opts=options,
        )
    # A service leaving a protected stack (allowed by allow_deletes, checked in the preflight):
    # its access is registered once more, with no users and no grants and unprotected, so the
    # update revokes them; the next run deletes the empty resource (see manage_topics).
    if plan.protection.protect:
        planned = {service.name for service in plan.services}
        for name in sorted(set(previous.names(SERVICES_OUTPUT) or ()) - planned):
            principals = [plan.principal_at(name, generation) for generation in valid]
            ServiceAccess(name, principals, [], connection, users={}, opts=retiring(parent, after))
    return access


def manage_mirror_access(
    side: MirrorSide,
    connection: AdminConnection,
    parent: pulumi.Resource,
    *,
    user: ScramUser | None,
    resource_prefix: str = "",
    after: Sequence[pulumi.Resource] = (),
) -> ServiceAccess:
    """MirrorMaker 2's principal on one cluster of a migration: its SCRAM user (where users live
    in Kafka) and exactly the plan's grants for that side. Never protected: removing the migration
    removes it, and on a protected stack the preflight refuses that unless allowed."""
    return ServiceAccess(
        PLATFORM_MIRROR,
        [side.principal],
        [plan_acl_text(acl, acl.principal) for acl in side.acls],
        connection,
        users={side.principal: user} if user is not None else None,
        resource_prefix=resource_prefix,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(after)),
    )


def scram_password(
    parent: pulumi.Resource, user: str, generation: int = 1, *, prefix: str = ""
) -> pulumi.Output[str]:
    """One SCRAM password per user (a service, the mirror) and credential generation; a new
    generation is a new password (`-g<N>` in its name after the first)."""
    password = random.RandomPassword(
        f"{prefix}scram-password-{user}{generation_suffix(generation)}",
        length=PASSWORD_LENGTH,
        special=False,
        keepers={"generation": str(generation)},
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return password.result


def scram_login(
    access: ServiceAccess, username: str, user: ScramUser, version: pulumi.Input[str]
) -> ServiceCredentials:
    """A SCRAM user's login as the Kubernetes side reads it; ``version`` changes with the credential."""
    return ServiceCredentials(
        # From the access resource, so the Kubernetes Secret is written only once the user exists.
        username=access.id.apply(lambda _: username),
        password=pulumi.Output.secret(user.password),
        principal_id=pulumi.Output.from_input(username),
        version=pulumi.Output.from_input(version),
    )


def password_version(username: str, password: str) -> str:
    """A version of a login that changes whenever its password does (the mirror keeps one user
    whose password is replaced, not rotated under a new name): a digest, never the password."""
    return f"{username}#{hashlib.sha256(f'{username}:{password}'.encode()).hexdigest()[:16]}"


def mirror_login(access: ServiceAccess, username: str, user: ScramUser) -> ServiceCredentials:
    """MirrorMaker 2's login on one side: a new password is a new version, which restarts it."""
    version = pulumi.Output.from_input(user.password).apply(
        lambda password: password_version(username, password)
    )
    return scram_login(access, username, user, version)


def existing_cluster_connection(
    settings: ExistingClusterSettings, password: pulumi.Output[str], password_config: str, project_dir: Path
) -> AdminConnection:
    """The admin connection to a cluster run elsewhere (the stack's, or a migration's source);
    the providers read the password from ``password_config`` at every call."""
    ca_cert = None
    if settings.tls.ca_cert_file is not None:
        ca_cert = (project_dir / settings.tls.ca_cert_file).read_text(encoding="utf-8")
    return AdminConnection(
        bootstrap_servers=settings.bootstrap_servers,
        username=settings.admin.username,
        password=pulumi.Output.secret(password),
        sasl_mechanism=settings.admin_mechanism,
        tls=settings.security_protocol == "SASL_SSL",
        ca_cert=ca_cert,
        skip_tls_verify=settings.tls.skip_verify,
        password_config=password_config,
    )


def service_scram_users(
    parent: pulumi.Resource,
    plan: Plan,
    service: str,
    generations: Generations,
    mechanism: str,
    *,
    prefix: str = "",
) -> dict[str, ScramUser]:
    """A service's SCRAM users, one per credential generation still valid, each with its password."""
    return {
        plan.principal_at(service, generation): ScramUser(
            mechanism, scram_password(parent, service, generation, prefix=prefix)
        )
        for generation in sorted(generations.live, reverse=True)
    }
