"""`lag`: every planned consumer's lag on a live cluster, against its thresholds.

Exit 0 within thresholds, 3 when any is exceeded or a group has no active member, 1 when the
cluster cannot be read, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from infra.commands.common import EXIT_DRIFT, EXIT_OK, EXIT_STALE, CommandFailed, load_plan
from infra.commands.live import add_cluster_arguments, stack_broker
from infra.live.consumer_lag import read_lag
from infra.live.lag_report import judge, to_json, to_table
from infra.live.live_cluster import ClusterUnreachable

EXIT_LAGGING = EXIT_DRIFT  # 3: something a person must look at on the live cluster


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "lag", help="each planned consumer's lag on the live cluster (exit 3 over a threshold)"
    )
    parser.add_argument("--stack", required=True, help="a stack name (local, dev, prod, pr-<n>) or file")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    add_cluster_arguments(parser)


def run(args: argparse.Namespace, project_dir: Path) -> int:
    plan = load_plan(project_dir, args.stack)
    broker = stack_broker(args, plan, project_dir)
    try:
        results = read_lag(broker, plan.consumers, timeout=args.timeout)
    except ClusterUnreachable as error:
        raise CommandFailed(EXIT_STALE, str(error)) from None
    findings = judge(results, now_ms=int(time.time() * 1000))
    sys.stdout.write(
        to_json(findings) if args.format == "json" else to_table(findings, plan.stack, broker.bootstrap)
    )
    return EXIT_LAGGING if any(finding.problems for finding in findings) else EXIT_OK
