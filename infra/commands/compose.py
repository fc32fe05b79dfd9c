"""`compose`: write (or `--check`) docker-compose.kafka.yml and .env.example from the local stack."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from infra.commands.common import EXIT_CONFIG_ERROR, EXIT_OK, EXIT_STALE, CommandFailed, load_plan
from infra.plan.model import Plan
from infra.render.compose import COMPOSE_FILE, env_example, render_compose

ENV_EXAMPLE_FILE = ".env.example"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "compose", help=f"write {COMPOSE_FILE} and .env.example from the local stack"
    )
    parser.add_argument("--stack", default="local", help="a local stack (default: local)")
    parser.add_argument("--check", action="store_true", help="exit 1 with a diff when the files are stale")


def generated_files(plan: Plan) -> dict[str, str]:
    return {COMPOSE_FILE: render_compose(plan), ENV_EXAMPLE_FILE: env_example(plan)}


def write_generated_files(project_dir: Path, plan: Plan) -> list[str]:
    """Write the files that differ from the plan's; their names."""
    written = []
    for name, text in generated_files(plan).items():
        path = project_dir / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(name)
    return written


def run(args: argparse.Namespace, project_dir: Path) -> int:
    plan = load_plan(project_dir, args.stack)
    if plan.cluster.provider != "local":
        raise CommandFailed(
            EXIT_CONFIG_ERROR,
            f"stack '{args.stack}': the compose file mirrors a local stack, not {plan.cluster.provider}",
        )
    if not args.check:
        for name in write_generated_files(project_dir, plan):
            print(f"wrote {name}")
        return EXIT_OK
    stale = False
    for name, text in generated_files(plan).items():
        path = project_dir / name
        if not path.exists():
            stale = True
            print(f"{name} does not exist in {project_dir}", file=sys.stderr)
            continue
        current = path.read_text(encoding="utf-8")
        if current != text:
            stale = True
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    f"{name} (committed)",
                    f"{name} (from the plan)",
                )
            )
    if stale:
        print("stale: run `python -m infra compose` and commit the result", file=sys.stderr)
        return EXIT_STALE
    return EXIT_OK
