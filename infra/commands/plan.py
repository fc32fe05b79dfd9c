"""`plan`: the resolved plan of one stack, as a table or as deterministic JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.commands.common import EXIT_OK, load_plan
from infra.render.plan_table import render_table


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("plan", help="print the resolved plan of one stack")
    parser.add_argument("--stack", required=True, help="a stack name (local, dev, prod, pr-<n>) or file")
    parser.add_argument("--format", choices=("table", "json"), default="table")


def run(args: argparse.Namespace, project_dir: Path) -> int:
    plan = load_plan(project_dir, args.stack)
    sys.stdout.write(plan.to_json() if args.format == "json" else render_table(plan))
    return EXIT_OK
