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
    CommandFailed,
    load_plan,
)
from infra.commands.live import add_cluster_arguments, read_live_cluster
from infra.drift import Scope, compare
from infra.kafka_broker import Broker
from infra.live_cluster import connection
from infra.plan_model import BOOTSTRAP_TOKEN, Plan
from infra.settings import ExistingClusterSettings


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
    broker = _broker(args, plan)
    if broker is None:
        raise CommandFailed(
            EXIT_CONFIG_ERROR,
            f"the address of stack {plan.stack}'s cluster is known only after deployment: pass "
            "--bootstrap-servers (e.g. `pulumi stack output bootstrap_servers`) or KAFKA_BOOTSTRAP_SERVERS",
        )
    live = read_live_cluster(broker, args.timeout)
    admins = {name for name in (broker.admin_user, plan.cluster.admin_principal) if name}
    scope = Scope(principal_ids=principal_ids, ignore_principals=admins, all_topics=args.all_topics)
    report = compare(plan, live, broker.bootstrap, scope)
    sys.stdout.write(report.to_json() if args.format == "json" else report.to_table())
    return EXIT_OK if report.in_sync else EXIT_DRIFT


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


def _broker(args: argparse.Namespace, plan: Plan) -> Broker | None:
    """Flags and environment first; else what the stack's own settings say (existing clusters, and
    a local stack's open listener)."""
    cluster = plan.cluster
    # A local stack's listeners are known: the open one needs no login.
    protocol = args.security_protocol or os.environ.get("KAFKA_SECURITY_PROTOCOL")
    if protocol is None and cluster.provider == "local":
        protocol = "PLAINTEXT"
    if args.bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return connection(args.bootstrap_servers, protocol, args.sasl_mechanism, args.username)
    if cluster.provider == "local":
        return connection(cluster.local_settings().external_bootstrap, protocol)
    settings = cluster.provider_settings
    if cluster.bootstrap == BOOTSTRAP_TOKEN or not isinstance(settings, ExistingClusterSettings):
        return None
    return connection(
        cluster.bootstrap,
        args.security_protocol or cluster.security_protocol,
        args.sasl_mechanism or cluster.sasl_mechanism,
        args.username or settings.admin.username,
    )
