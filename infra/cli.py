"""`python -m infra` / `kafka-platform`: validate, plan and render without a Pulumi CLI."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from infra.commands import compose, diff, drift, env, import_cluster, local, plan, validate
from infra.commands.common import EXIT_CONFIG_ERROR, EXIT_OK, EXIT_STALE, CommandFailed
from infra.errors import ConfigError
from infra.stacks import find_project_dir

# The command table: each module adds its parser and runs it.
COMMANDS: dict[str, ModuleType] = {
    "validate": validate,
    "plan": plan,
    "env": env,
    "compose": compose,
    "local": local,
    "import": import_cluster,
    "drift": drift,
    "diff": diff,
}

__all__ = ["EXIT_CONFIG_ERROR", "EXIT_OK", "EXIT_STALE", "main", "main_entry"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra", description=__doc__)
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
    project_dir = (args.project_dir or find_project_dir()).resolve()
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
