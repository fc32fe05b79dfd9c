"""`validate`: the topology and every (or the named) stack's settings, all problems at once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.commands.common import EXIT_CONFIG_ERROR, EXIT_OK, load_plan, stacks_in
from infra.model.errors import ConfigError


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("validate", help="validate topology.yaml and stack settings")
    parser.add_argument(
        "--stack", action="append", help="stack to validate (repeatable; default: every Pulumi.<stack>.yaml)"
    )


def run(args: argparse.Namespace, project_dir: Path) -> int:
    failures: list[str] = []
    for stack in args.stack or stacks_in(project_dir):
        try:
            plan = load_plan(project_dir, stack)
        except ConfigError as exc:
            failures.extend(str(problem) for problem in exc.problems)
            continue
        grants = f"{len(plan.acls)} ACLs"
        if plan.access_mode == "rbac":
            grants = f"{len(plan.role_bindings)} role bindings"
        elif plan.access_mode == "prefixed":
            grants += " (prefixed)"
        print(
            f"ok  {stack}: {len(plan.topics)} topics, {len(plan.principals)} principals, "
            f"{grants} ({plan.cluster.provider})"
        )
        for warning in plan.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    if failures:
        for line in dict.fromkeys(failures):  # the topology's problems repeat per stack
            print(line, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    return EXIT_OK
