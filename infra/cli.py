"""`python -m infra` / `kafka-platform`: validate, plan and render without a Pulumi CLI."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from infra.errors import ConfigError
from infra.plan import Plan, resolve_plan
from infra.plan_table import render_table
from infra.stacks import find_project_dir, load_project

EXIT_OK = 0
EXIT_STALE = 1
EXIT_CONFIG_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra", description=__doc__)
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        help="directory with Pulumi.yaml and topology.yaml (default: nearest from cwd)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    validate = commands.add_parser("validate", help="validate topology.yaml and stack settings")
    validate.add_argument(
        "--stack", action="append", help="stack to validate (repeatable; default: every Pulumi.<stack>.yaml)"
    )

    plan = commands.add_parser("plan", help="print the resolved plan of one stack")
    plan.add_argument("--stack", required=True)
    plan.add_argument("--format", choices=("table", "json"), default="table")
    return parser


def _stacks_in(project_dir: Path) -> list[str]:
    return sorted(path.name[len("Pulumi.") : -len(".yaml")] for path in project_dir.glob("Pulumi.*.yaml"))


def load_plan(project_dir: Path, stack: str) -> Plan:
    topology, context = load_project(project_dir, stack)
    return resolve_plan(topology, context)


def _validate(project_dir: Path, stacks: Sequence[str]) -> int:
    failures: list[str] = []
    for stack in stacks:
        try:
            plan = load_plan(project_dir, stack)
        except ConfigError as exc:
            failures.extend(str(problem) for problem in exc.problems)
            continue
        print(
            f"ok  {stack}: {len(plan.topics)} topics, {len(plan.principals)} principals, "
            f"{len(plan.acls)} ACLs ({plan.cluster.provider})"
        )
    if failures:
        for line in dict.fromkeys(failures):  # the topology's problems repeat per stack
            print(line, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    project_dir = (args.project_dir or find_project_dir()).resolve()
    try:
        if args.command == "validate":
            return _validate(project_dir, args.stack or _stacks_in(project_dir))
        if args.command == "plan":
            plan = load_plan(project_dir, args.stack)
            sys.stdout.write(plan.to_json() if args.format == "json" else render_table(plan))
            return EXIT_OK
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    raise AssertionError(f"unhandled command {args.command}")


def main_entry() -> None:
    """Console-script entry point (`kafka-platform ...`)."""
    sys.exit(main())
