"""`plan`: the resolved plan of one stack, as a table or as deterministic JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.commands.common import EXIT_CONFIG_ERROR, EXIT_OK, CommandFailed, load_plan, stacks_in
from infra.render.plan_table import render_table


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("plan", help="print the resolved plan of one stack")
    parser.add_argument(
        "--stack", help="a stack name (local, dev, prod, pr-<n>) or file; without it, the stacks"
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")


def run(args: argparse.Namespace, project_dir: Path) -> int:
    if args.stack is None:
        stacks = stacks_in(project_dir)
        raise CommandFailed(
            EXIT_CONFIG_ERROR,
            f"which stack? --stack {' | '.join(stacks) or '<name>'} "
            "(or pr-<n>, or a Pulumi.<stack>.yaml path)",
        )
    plan = load_plan(project_dir, args.stack)
    sys.stdout.write(plan.to_json() if args.format == "json" else render_table(plan))
    return EXIT_OK
