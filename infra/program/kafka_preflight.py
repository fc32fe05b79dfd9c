"""An existing cluster read before any resource is registered, so that what the dynamic providers
would refuse half-way through an `up` is refused in `preview` and before the first change.

Dynamic providers get no preview of their own (the engine skips `create`/`update` in a preview,
pulumi/pulumi sdk/go/common/resource/plugin/provider_plugin.go): without this, a preview is green
and the `up` stops after other resources were applied. The same rules as the providers' own
(`cluster_admin.topic_refusals`), on the same core:
- the cluster answers the admin's login within seconds (one clear error, not a timeout per
  resource);
- it supports the Admin API's SCRAM calls (Redpanda 25.1 and older do not);
- no planned topic would shrink or change replication, and none that exists on the cluster and
  is not the stack's (deployed before, adopted, or left by an interrupted run) would be changed.

MSK stacks are not read: their brokers are private to the VPC, and the cluster may not exist yet.

A migrating stack's source (settings.migration.source) is read too, whatever the target: it
answers the source admin's login, holds every planned topic (MirrorMaker 2 mirrors them from
there; the stack never creates topics on the old cluster), and has no user of the stack's names
that the stack did not make or adopt (migration.adopt.users).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pulumi

from infra.live.cluster_admin import (
    AdminLogin,
    ClusterUnreachable,
    Unsupported,
    connect,
    read_scram_users,
    read_topics,
    topic_refusals,
    topics_with_records,
)
from infra.model.cluster_connection import ExistingClusterSettings
from infra.model.stacks import ADMIN_PASSWORD_KEY, MIGRATION_SOURCE_PASSWORD_KEY
from infra.plan.model import Plan
from infra.program.kafka_admin import topic_spec
from infra.program.previous_deployment import (
    KAFKA_CLUSTER_ID_OUTPUT,
    MIGRATION_MIRROR_OUTPUT,
    TOPIC_NAMES_OUTPUT,
    PreviousDeployment,
)

# Returns the cluster's id when it read one (exported, so the next run knows the cluster moved).
KafkaCheck = Callable[[Plan, PreviousDeployment, Path], str | None]


def existing_cluster_problems(
    login: AdminLogin, plan: Plan, previous: PreviousDeployment
) -> tuple[list[str], str | None]:
    """Why this deployment must not start on the cluster behind ``login`` (empty when it may),
    and the cluster's id."""
    try:
        admin, cluster_id = connect(login)
    except ClusterUnreachable as exc:
        return [str(exc)], None
    try:
        read_scram_users(admin)
    except Unsupported as exc:
        return [str(exc)], cluster_id
    planned = {topic.name: topic_spec(topic) for topic in plan.topics}
    live = read_topics(admin, planned)
    owned = set(plan.adoption.topics)
    # What the last deployment had is the stack's only on the cluster it had it on (the providers
    # judge by the cluster id in each group's state the same way).
    if previous.outputs.get(KAFKA_CLUSTER_ID_OUTPUT) in (None, cluster_id):
        owned |= set(previous.names(TOPIC_NAMES_OUTPUT) or ()) | set(previous.migrated_topics())
    unowned = [name for name in live if name not in owned]
    with_records = topics_with_records(admin, unowned) if unowned else set()
    # A topic exactly as planned that never held a record is left to the provider, which knows
    # from its state whether an earlier, part-failed `up` of this stack made it (the stack's
    # outputs are written only when an `up` succeeds) and refuses it otherwise.
    owned |= {name for name in unowned if live[name] == planned[name] and name not in with_records}
    problems = topic_refusals(planned, live, owned=owned, with_records=with_records)
    return problems, cluster_id


def migration_source_problems(login: AdminLogin, plan: Plan, previous: PreviousDeployment) -> list[str]:
    """Why the migration's source cannot serve this deployment (empty when it can)."""
    migration = plan.migration
    if migration is None:
        return []
    try:
        admin, _ = connect(login)
    except ClusterUnreachable as exc:
        return [f"settings.migration.source: {exc}"]
    try:
        live_users = read_scram_users(admin)
    except Unsupported as exc:
        return [f"settings.migration.source: {exc}"]
    problems: list[str] = []
    planned = {topic.name: topic_spec(topic) for topic in plan.topics}
    live = read_topics(admin, planned)
    missing = sorted(set(planned) - set(live))
    if missing:
        problems.append(
            f"the migration's source {login.address} has no topic {', '.join(missing)}: MirrorMaker 2 "
            "mirrors every planned topic from there and the stack never creates topics on the source; "
            "create them there, or add them to topology.yaml only after the migration"
        )
    # MirrorMaker would try to add the missing partitions on the target (it has no grant to) and
    # copy nothing of them; fewer partitions on the source is fine (records keep their partition).
    planned_partitions = {topic.name: topic.partitions for topic in plan.topics}
    for name, spec in sorted(live.items()):
        source_count, planned_count = int(spec["partitions"]), planned_partitions[name]
        if source_count > planned_count:
            problems.append(
                f"topic {name} has {source_count} partitions on the migration's source {login.address} "
                f"and {planned_count} planned: MirrorMaker 2 copies a record to the partition of the same "
                f"number, so the target needs at least {source_count}; plan them in topology.yaml "
                "(topics.<key>.partitions) or the stack's topics.overrides"
            )
    # Users the stack made on an earlier run are its own; before the first, any is someone else's.
    if not previous.outputs.get(MIGRATION_MIRROR_OUTPUT):
        names = {plan.principal_at(service.name, plan.credentials.generation) for service in plan.services}
        names.add(migration.source.principal)
        foreign = sorted(name for name in names & set(live_users) if name not in migration.adopt_users)
        if foreign:
            problems.append(
                f"SCRAM user {', '.join(foreign)} already exists on the migration's source "
                f"{login.address}; the stack would reset its password. Adopt it on purpose: "
                "settings.migration.adopt.users"
            )
    return problems


def check_kafka_cluster(plan: Plan, previous: PreviousDeployment, project_dir: Path) -> str | None:
    if plan.migration is not None:
        _check_migration_source(plan, previous, project_dir)
    settings = plan.cluster.provider_settings
    if not isinstance(settings, ExistingClusterSettings):
        return None
    password = pulumi.runtime.get_config(ADMIN_PASSWORD_KEY)
    if password is None:
        return None  # validation has refused the stack already
    problems, cluster_id = existing_cluster_problems(
        admin_login(settings, str(password), project_dir), plan, previous
    )
    if problems:
        raise pulumi.RunError("refused before any change was made:\n" + "\n".join(problems))
    return cluster_id


def admin_login(settings: ExistingClusterSettings, password: str, project_dir: Path) -> AdminLogin:
    """The admin's login to a cluster run elsewhere (the stack's, or a migration's source)."""
    ca_cert = None
    if settings.tls.ca_cert_file is not None:
        ca_cert = (project_dir / settings.tls.ca_cert_file).read_text(encoding="utf-8")
    return AdminLogin(
        bootstrap_servers=tuple(settings.bootstrap_servers),
        security_protocol=settings.security_protocol,
        sasl_mechanism=settings.admin_mechanism,
        username=settings.admin.username,
        password=password,
        ca_cert=ca_cert,
        skip_tls_verify=settings.tls.skip_verify,
    )


def _check_migration_source(plan: Plan, previous: PreviousDeployment, project_dir: Path) -> None:
    migration = plan.migration
    password = pulumi.runtime.get_config(MIGRATION_SOURCE_PASSWORD_KEY)
    if migration is None or password is None:
        return  # validation has refused the stack already
    login = admin_login(migration.source_settings, str(password), project_dir)
    problems = migration_source_problems(login, plan, previous)
    if problems:
        raise pulumi.RunError("refused before any change was made:\n" + "\n".join(problems))
