"""`env`: each service's env flags, ready to `export` (secrets are never printed)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.commands.common import EXIT_OK, load_plan
from infra.env_output import render_env


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("env", help="print each service's env flags (secrets are never printed)")
    parser.add_argument("--stack", required=True)
    parser.add_argument("--service", action="append", help="only this service (repeatable)")
    parser.add_argument("--host", action="store_true", help="local stack: the address host processes use")


def run(args: argparse.Namespace, project_dir: Path) -> int:
    plan = load_plan(project_dir, args.stack)
    sys.stdout.write(render_env(plan, services=args.service, host=args.host))
    return EXIT_OK
