"""What every command shares: exit codes and the stacks of a project."""

from __future__ import annotations

from pathlib import Path

from infra.plan.resolve import load_plan

EXIT_OK = 0
EXIT_STALE = 1  # generated files out of date; also: a cluster could not be reached
EXIT_CONFIG_ERROR = 2
EXIT_DRIFT = 3
EXIT_NOT_YET = 3  # `migration status`: readable, but not there yet (lagging, untranslated, not movable)
EXIT_NEEDS_REVIEW = 4  # `diff`: a change a person must look at
EXIT_REFUSED = 5  # `diff`: a change that must not ship as it is

__all__ = [
    "EXIT_CONFIG_ERROR",
    "EXIT_DRIFT",
    "EXIT_NEEDS_REVIEW",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_STALE",
    "CommandFailed",
    "load_plan",
    "stacks_in",
]


def stacks_in(project_dir: Path) -> list[str]:
    return sorted(path.name[len("Pulumi.") : -len(".yaml")] for path in project_dir.glob("Pulumi.*.yaml"))


class CommandFailed(Exception):
    """A command cannot go on: the CLI prints the message (no traceback) and exits with the code."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
