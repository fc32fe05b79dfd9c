"""`drift`: a stack's plan against its live cluster, seeing what the state file cannot.

Exit 0 in sync, 3 on drift, 2 on bad input, 1 when the cluster cannot be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from infra.commands.common import (
    EXIT_CONFIG_ERROR,
    EXIT_DRIFT,
    EXIT_OK,
    EXIT_STALE,
    CommandFailed,
    load_plan,
)
from infra.commands.live import add_cluster_arguments, read_live_cluster, stack_broker
from infra.live.drift import Scope, compare
from infra.live.local_cluster import host_registry_url, served_owners
from infra.live.schema_registry import (
    LiveSubject,
    RegistryError,
    RegistryLogin,
    RegistryUnreachable,
    SchemaRegistry,
    read_subjects,
)
from infra.plan.model import SCHEMA_REGISTRY_PASSWORD_ENV, Plan

# The password of settings.schemas.registry.username, as `pulumi config get` shows it.


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "drift", help="compare a stack's plan with its live cluster (exit 3 on drift)"
    )
    parser.add_argument("--stack", required=True)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument(
        "--principal-ids",
        help="JSON {service: principal} where ACLs name other ids than the plan "
        "(Confluent: `pulumi stack output principal_ids --json`)",
    )
    parser.add_argument(
        "--all-topics",
        action="store_true",
        help="every topic on the cluster is this stack's (default: only those under its domain)",
    )
    add_cluster_arguments(parser)


def run(args: argparse.Namespace, project_dir: Path) -> int:
    plan = load_plan(project_dir, args.stack)
    principal_ids = _principal_ids(args.principal_ids)
    broker = stack_broker(args, plan, project_dir)
    local_registry = host_registry_url(project_dir, plan) if plan.cluster.provider == "local" else None
    subjects = registered_subjects(plan, local_registry)
    live = read_live_cluster(broker, args.timeout)
    admins = {name for name in (broker.admin_user, plan.cluster.admin_principal) if name}
    former = served_owners(project_dir) if plan.cluster.provider == "local" else []
    scope = Scope(
        principal_ids=principal_ids,
        ignore_principals=admins,
        all_topics=args.all_topics,
        former_owners=[owner for owner in former if owner != (plan.domain, plan.stack)],
    )
    report = compare(plan, live, broker.bootstrap, scope, subjects)
    sys.stdout.write(report.to_json() if args.format == "json" else report.to_table())
    return EXIT_OK if report.in_sync else EXIT_DRIFT


def registered_subjects(plan: Plan, url: str | None = None) -> dict[str, LiveSubject] | None:
    """What the stack's registry (at ``url`` where given: a local stack's on the host) holds of
    its subjects; None where it names no registry."""
    registry = plan.schema_registry
    if registry is None or not plan.subjects:
        return None
    password = os.environ.get(SCHEMA_REGISTRY_PASSWORD_ENV, "")
    if registry.username and not password:
        raise CommandFailed(
            EXIT_CONFIG_ERROR,
            f"{SCHEMA_REGISTRY_PASSWORD_ENV}: required to read schema registry {registry.url} as "
            f"'{registry.username}' (`pulumi config get {registry.password_config}`)",
        )
    login = RegistryLogin(url=url or registry.url, username=registry.username or "", password=password)
    try:
        return read_subjects(SchemaRegistry(login), [subject.subject for subject in plan.subjects])
    except (RegistryUnreachable, RegistryError) as error:
        raise CommandFailed(EXIT_STALE, str(error)) from None


def _principal_ids(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandFailed(EXIT_CONFIG_ERROR, f"--principal-ids: not JSON ({error.msg})") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise CommandFailed(
            EXIT_CONFIG_ERROR, '--principal-ids: must be a JSON object such as {"api": "sa-abc123"}'
        )
    return {str(key): item for key, item in value.items()}
