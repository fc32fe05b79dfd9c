"""`python -m infra` / `kafka-platform`: validate, plan and render without a Pulumi CLI."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from pathlib import Path

from infra.compose import COMPOSE_FILE, env_example, render_compose
from infra.env_output import render_env
from infra.errors import ConfigError
from infra.plan import Plan, resolve_plan
from infra.plan_table import render_table
from infra.stacks import find_project_dir, load_project

ENV_EXAMPLE_FILE = ".env.example"

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

    compose = commands.add_parser(
        "compose", help=f"write {COMPOSE_FILE} and .env.example from the local stack"
    )
    compose.add_argument("--stack", default="local")
    compose.add_argument("--check", action="store_true", help="exit 1 with a diff when the files are stale")

    env = commands.add_parser("env", help="print each service's env flags (secrets are never printed)")
    env.add_argument("--stack", required=True)
    env.add_argument("--service", action="append", help="only this service (repeatable)")
    env.add_argument("--host", action="store_true", help="local stack: the address host processes use")
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


def _compose(project_dir: Path, stack: str, *, check: bool) -> int:
    plan = load_plan(project_dir, stack)
    if plan.cluster.provider != "local":
        print(
            f"stack '{stack}': the compose file mirrors a local stack, not {plan.cluster.provider}",
            file=sys.stderr,
        )
        return EXIT_CONFIG_ERROR
    wanted = {COMPOSE_FILE: render_compose(plan), ENV_EXAMPLE_FILE: env_example(plan)}
    stale = False
    for name, text in wanted.items():
        path = project_dir / name
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current == text:
            continue
        if check:
            stale = True
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    f"{name} (committed)",
                    f"{name} (from the plan)",
                )
            )
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {name}")
    if stale:
        print("stale: run `python -m infra compose` and commit the result", file=sys.stderr)
        return EXIT_STALE
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
        if args.command == "compose":
            return _compose(project_dir, args.stack, check=args.check)
        if args.command == "env":
            plan = load_plan(project_dir, args.stack)
            sys.stdout.write(render_env(plan, services=args.service, host=args.host))
            return EXIT_OK
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    raise AssertionError(f"unhandled command {args.command}")


def main_entry() -> None:
    """Console-script entry point (`kafka-platform ...`)."""
    sys.exit(main())
