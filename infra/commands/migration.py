"""`migration status|mirror`: a migrating stack (settings.migration) seen on both live clusters, and
MirrorMaker 2 run locally from Apache Kafka's jars.

status: exit 0 when the mirror is in sync and every group of a consumer still on the source is
translated on the target (or what `--require` names holds); 3 when not yet (the mirror lags, a
group is not translated, the service may not move, the source may not go); 1 when a cluster
cannot be read; 2 on bad input. mirror: runs until stopped (Ctrl-C); MirrorMaker's exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from infra.commands.common import (
    EXIT_CONFIG_ERROR,
    EXIT_NOT_YET,
    EXIT_OK,
    EXIT_STALE,
    CommandFailed,
    load_plan,
)
from infra.commands.live import add_cluster_arguments, stack_broker
from infra.live.kafka_broker import Broker, missing_tools
from infra.live.live_cluster import ClusterUnreachable, connection
from infra.live.migration_status import (
    MigrationStatus,
    MirrorScope,
    MovingService,
    read_status,
    to_json,
    to_text,
)
from infra.live.mirror_maker import MirrorPasswords, run_foreground
from infra.model.migration_settings import MIGRATION_SOURCE_PASSWORD_NAME
from infra.plan.migration import (
    MIRROR_CREDENTIALS_OUTPUT,
    MIRROR_SOURCE_PASSWORD_ENV,
    MIRROR_TARGET_PASSWORD_ENV,
    SOURCE_ALIAS,
)
from infra.plan.model import BOOTSTRAP_TOKEN, MigrationPlan, Plan
from infra.render.mirror_maker import mirror_maker_properties

# The source admin's password for `status` (the stack keeps it as secret config
# kafka-platform:migrationSourceAdminPassword; a command reads it from the environment only).
SOURCE_ADMIN_PASSWORD_ENV = "MIGRATION_SOURCE_ADMIN_PASSWORD"  # pragma: allowlist secret
MIRROR_TARGET_USERNAME_ENV = "MIRROR_TARGET_USERNAME"
MIRROR_WORK_DIR = Path("build") / "mirror-maker"
# The mirror is in sync while no record waits longer than this many sync intervals to be copied:
# MirrorMaker commits its progress once per interval, and a busy source always has some waiting.
LAG_TOLERANCE_INTERVALS = 3
IN_SYNC = "in-sync"
SOURCE_CAN_GO = "source-can-go"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "migration", help="a cluster migration: its status on both clusters, or run MirrorMaker 2 locally"
    )
    actions = parser.add_subparsers(dest="migration_action", required=True)
    status = actions.add_parser(
        "status",
        help="mirror lag, translated group positions, each service's cluster, the next safe moves "
        "(exit 0 in sync, 3 not yet, 1 a cluster unreadable)",
    )
    status.add_argument("--stack", required=True, help="a stack with settings.migration")
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.add_argument(
        "--require",
        default=IN_SYNC,
        metavar=f"{IN_SYNC}|{SOURCE_CAN_GO}|SERVICE",
        help=f"what exit 0 means: {IN_SYNC} (default), {SOURCE_CAN_GO}, or that SERVICE may move now",
    )
    add_cluster_arguments(status)
    source = status.add_argument_group(
        "source", f"default: settings.migration.source; the password only from {SOURCE_ADMIN_PASSWORD_ENV}"
    )
    source.add_argument("--source-bootstrap-servers", help="host:port[,host:port] of the source")
    source.add_argument("--source-security-protocol", help="default: the stack's migration.source")
    source.add_argument("--source-sasl-mechanism", help="default: the stack's migration.source")
    source.add_argument("--source-username", help="the source admin (default: migration.source.admin)")
    mirror = actions.add_parser(
        "mirror",
        help=f"run MirrorMaker 2 in the foreground from Maven Central jars (passwords from "
        f"{MIRROR_SOURCE_PASSWORD_ENV} and {MIRROR_TARGET_PASSWORD_ENV})",
    )
    mirror.add_argument("--stack", required=True, help="a stack with settings.migration")
    mirror.add_argument(
        "--target-bootstrap-servers",
        help="the target's address where the stack knows it only after deployment "
        "(`pulumi stack output bootstrap_servers`)",
    )


def run(args: argparse.Namespace, project_dir: Path) -> int:
    plan = load_plan(project_dir, args.stack)
    migration = _migration(plan)
    if args.migration_action == "mirror":
        return _mirror(args, project_dir, plan, migration)
    return _status(args, project_dir, plan, migration)


def _migration(plan: Plan) -> MigrationPlan:
    if plan.migration is None:
        raise CommandFailed(
            EXIT_CONFIG_ERROR,
            f"stack '{plan.stack}' is not migrating: its stack file has no settings.migration "
            "(docs/migration.md)",
        )
    return plan.migration


def _status(args: argparse.Namespace, project_dir: Path, plan: Plan, migration: MigrationPlan) -> int:
    services = [service.name for service in plan.services]
    if args.require not in (IN_SYNC, SOURCE_CAN_GO, *services):
        raise CommandFailed(
            EXIT_CONFIG_ERROR,
            f"--require {args.require}: not {IN_SYNC}, {SOURCE_CAN_GO} or a service of stack "
            f"{plan.stack} ({', '.join(services)})",
        )
    target = stack_broker(args, plan, project_dir)
    source = _source_broker(args, migration)
    try:
        status = read_status(source, target, scope(plan, migration), timeout=args.timeout)
    except ClusterUnreachable as error:
        raise CommandFailed(EXIT_STALE, str(error)) from None
    sys.stdout.write(to_json(status) if args.format == "json" else to_text(status, plan.stack))
    return status_exit_code(status, args.require)


def status_exit_code(status: MigrationStatus, require: str = IN_SYNC) -> int:
    """0 when what ``require`` names holds, else EXIT_NOT_YET: a pipeline waits and asks again."""
    if require == IN_SYNC:
        ready = status.healthy
    elif require == SOURCE_CAN_GO:
        ready = status.source_can_go
    else:  # a service: it may move now, or has moved
        ready = require in status.movable or status.sides.get(require) == "target"
    return EXIT_OK if ready else EXIT_NOT_YET


def scope(plan: Plan, migration: MigrationPlan) -> MirrorScope:
    """What `status` reads, from the plan."""
    return MirrorScope(
        topics=tuple(migration.topics),
        services=tuple(
            MovingService(
                name=service.name,
                side=migration.service_sides.get(service.name, "source"),
                produces=tuple(service.produces),
                consumes=tuple(service.consumes),
                group=service.consumer_group or service.consumer_group_prefix,
                group_is_prefix=service.consumer_group is None and service.consumer_group_prefix is not None,
            )
            for service in plan.services
        ),
        offsets_topic=migration.connect_topics["offsets"],
        source_alias=SOURCE_ALIAS,
        keep_seconds=migration.keep_seconds,
        tolerated_lag_seconds=LAG_TOLERANCE_INTERVALS * migration.sync_interval_seconds,
    )


def _source_broker(args: argparse.Namespace, migration: MigrationPlan) -> Broker:
    settings = migration.source_settings
    broker = connection(
        args.source_bootstrap_servers or ",".join(settings.bootstrap_servers),
        args.source_security_protocol or settings.security_protocol,
        args.source_sasl_mechanism or settings.sasl_mechanism,
        args.source_username or settings.admin.username,
    )
    if broker is None:  # connection() returns None only without any bootstrap
        raise CommandFailed(EXIT_CONFIG_ERROR, "settings.migration.source.bootstrap_servers is empty")
    password = os.environ.get(SOURCE_ADMIN_PASSWORD_ENV, "")
    if broker.security_protocol.startswith("SASL") and not password:
        raise CommandFailed(
            EXIT_CONFIG_ERROR,
            f"{broker.security_protocol} to the source {broker.bootstrap} needs the source admin's "
            f"password in {SOURCE_ADMIN_PASSWORD_ENV} (the stack keeps it as "
            f"kafka-platform:{MIGRATION_SOURCE_PASSWORD_NAME})",
        )
    return Broker(
        bootstrap=broker.bootstrap,
        security_protocol=broker.security_protocol,
        sasl_mechanism=broker.sasl_mechanism,
        admin_user=broker.admin_user,
        admin_password=password,
        description=f"the source of stack migration ({broker.bootstrap})",
    )


def _mirror(args: argparse.Namespace, project_dir: Path, plan: Plan, migration: MigrationPlan) -> int:
    missing = [
        name for name in (MIRROR_SOURCE_PASSWORD_ENV, MIRROR_TARGET_PASSWORD_ENV) if not os.environ.get(name)
    ]
    if migration.target.sasl_mechanism is None and MIRROR_TARGET_PASSWORD_ENV in missing:
        missing.remove(MIRROR_TARGET_PASSWORD_ENV)  # a PLAINTEXT target takes no login
    if missing:
        raise CommandFailed(
            EXIT_CONFIG_ERROR,
            f"MirrorMaker's principal {migration.source.principal} logs in with the passwords in "
            f"{' and '.join(missing)}: export them from the secret stack output {MIRROR_CREDENTIALS_OUTPUT} "
            f"(`pulumi stack output {MIRROR_CREDENTIALS_OUTPUT} --show-secrets --json --stack {plan.stack}`: "
            "source.password and target.password)",
        )
    # Confluent Cloud logs the mirror in with its API key: the key id is the user name.
    target_username = os.environ.get(MIRROR_TARGET_USERNAME_ENV) or None
    if plan.cluster.provider == "confluent" and target_username is None:
        raise CommandFailed(
            EXIT_CONFIG_ERROR,
            f"Confluent Cloud logs MirrorMaker in with its API key: export its id in "
            f"{MIRROR_TARGET_USERNAME_ENV} (target.username of the secret stack output "
            f"{MIRROR_CREDENTIALS_OUTPUT})",
        )
    target_bootstrap = args.target_bootstrap_servers
    if target_bootstrap is None and plan.cluster.provider == "local":
        target_bootstrap = plan.cluster.local_settings().external_bootstrap
    if target_bootstrap is None and migration.target.bootstrap == BOOTSTRAP_TOKEN:
        raise CommandFailed(
            EXIT_CONFIG_ERROR,
            f"the address of stack {plan.stack}'s cluster is known only after deployment: pass "
            "--target-bootstrap-servers (`pulumi stack output bootstrap_servers`)",
        )
    tools = missing_tools()
    if tools:
        raise CommandFailed(
            EXIT_STALE, f"MirrorMaker 2 runs from Apache Kafka's jars: install {' and '.join(tools)} first"
        )
    properties = mirror_maker_properties(
        plan, target_bootstrap=target_bootstrap, target_username=target_username
    )
    passwords = MirrorPasswords(
        source=os.environ.get(MIRROR_SOURCE_PASSWORD_ENV, ""),
        target=os.environ.get(MIRROR_TARGET_PASSWORD_ENV, ""),
    )
    work = project_dir / MIRROR_WORK_DIR / plan.stack
    print(
        f"MirrorMaker 2: {SOURCE_ALIAS} -> target for stack {plan.stack} ({work}); Ctrl-C stops it",
        flush=True,
    )
    return run_foreground(work, properties, passwords)
