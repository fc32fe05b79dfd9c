"""kafka-platform (or `python -m infra` inside .venv): validate, plan, run the local Kafka, render and
review without a Pulumi CLI."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from types import ModuleType

from infra.commands import (
    compose,
    diff,
    drift,
    env,
    import_cluster,
    init_project,
    lag,
    local,
    migrate_state,
    migration,
    plan,
    validate,
)
from infra.commands.common import EXIT_CONFIG_ERROR, EXIT_OK, EXIT_STALE, CommandFailed
from infra.model.errors import ConfigError
from infra.model.stacks import find_project_dir

# The command table: each module adds its parser and runs it.
COMMANDS: dict[str, ModuleType] = {
    "init": init_project,
    "validate": validate,
    "plan": plan,
    "env": env,
    "compose": compose,
    "local": local,
    "import": import_cluster,
    "drift": drift,
    "lag": lag,
    "diff": diff,
    "migrate-state": migrate_state,
    "migration": migration,
}

__all__ = ["EXIT_CONFIG_ERROR", "EXIT_OK", "EXIT_STALE", "main", "main_entry"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kafka-platform", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('kafka-platform')}")
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        help="directory with Pulumi.yaml and topology.yaml (default: nearest from cwd)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS.values():
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    project_dir = args.project_dir or find_project_dir()
    if project_dir is None or not (project_dir / "Pulumi.yaml").is_file():
        where = project_dir or f"{Path.cwd()} or any directory above it"
        print(
            f"no Pulumi.yaml in {where}: run from the project (where topology.yaml is), "
            "or pass --project-dir",
            file=sys.stderr,
        )
        return EXIT_CONFIG_ERROR
    project_dir = project_dir.resolve()
    command: Callable[[argparse.Namespace, Path], int] = COMMANDS[args.command].run
    try:
        return command(args, project_dir)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except CommandFailed as failure:
        print(f"{args.command}: {failure}", file=sys.stderr)
        return failure.exit_code


def main_entry() -> None:
    """Console-script entry point (`kafka-platform ...`)."""
    sys.exit(main())
