"""What every command shares: exit codes and the stacks of a project."""

from __future__ import annotations

from pathlib import Path

from infra.plan import load_plan

EXIT_OK = 0
EXIT_STALE = 1  # generated files out of date; also: a cluster could not be reached
EXIT_CONFIG_ERROR = 2

__all__ = ["EXIT_CONFIG_ERROR", "EXIT_OK", "EXIT_STALE", "load_plan", "stacks_in"]


def stacks_in(project_dir: Path) -> list[str]:
    return sorted(path.name[len("Pulumi.") : -len(".yaml")] for path in project_dir.glob("Pulumi.*.yaml"))
