"""`compose`: write (or `--check`) docker-compose.kafka.yml and .env.example from the local stack."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from infra.commands.common import EXIT_CONFIG_ERROR, EXIT_OK, EXIT_STALE, load_plan
from infra.compose import COMPOSE_FILE, env_example, render_compose

ENV_EXAMPLE_FILE = ".env.example"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "compose", help=f"write {COMPOSE_FILE} and .env.example from the local stack"
    )
    parser.add_argument("--stack", default="local")
    parser.add_argument("--check", action="store_true", help="exit 1 with a diff when the files are stale")


def run(args: argparse.Namespace, project_dir: Path) -> int:
    plan = load_plan(project_dir, args.stack)
    if plan.cluster.provider != "local":
        print(
            f"stack '{args.stack}': the compose file mirrors a local stack, not {plan.cluster.provider}",
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
        if args.check:
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
