"""`diff --base <ref>`: every stack's plan at a git ref against the work tree's, judged by the
services that depend on each change. Exit 0 safe, 4 needs a human, 5 a refused change, 2 bad input
(an unknown ref, a stack that does not resolve)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from infra.commands.common import (
    EXIT_CONFIG_ERROR,
    EXIT_NEEDS_REVIEW,
    EXIT_OK,
    EXIT_REFUSED,
    CommandFailed,
    stacks_in,
)
from infra.model.errors import ConfigError
from infra.model.event_schemas import load_event_schemas
from infra.model.stacks import TOPOLOGY_FILE, checked_stack, settings_from_config
from infra.model.topology import topology_from_data
from infra.model.yaml_files import parse_yaml
from infra.plan.change_review import Review, Severity, review
from infra.plan.model import Plan
from infra.plan.resolve import load_plan, resolve_plan
from infra.plan.schema_review import review_subjects

EXIT_CODES = {Severity.SAFE: EXIT_OK, Severity.WARNING: EXIT_NEEDS_REVIEW, Severity.ERROR: EXIT_REFUSED}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "diff", help="review the change since a git ref by its consequences (exit 0/4/5; 2 bad input)"
    )
    parser.add_argument("--base", required=True, help="git ref to compare with, e.g. origin/main")
    parser.add_argument(
        "--stack", action="append", help="stack to review (repeatable; default: every stack file)"
    )
    parser.add_argument("--format", choices=("markdown", "json"), default="markdown")


def run(args: argparse.Namespace, project_dir: Path) -> int:
    result = Review()
    for stack in args.stack or stacks_in(project_dir):
        try:
            head = load_plan(project_dir, stack)
        except ConfigError as error:
            for problem in error.problems:
                # The topology's problems are the same in every stack: each is named once.
                _add_once(result, str(problem) if problem.file == TOPOLOGY_FILE else f"{stack}: {problem}")
            continue
        base = _base_plan(project_dir, args.base, stack, result)
        result.findings += review(base, head)
        history = {
            subject.subject: _earlier_versions(project_dir, args.base, subject.schema_file)
            for subject in head.subjects
            if subject.compatibility.endswith("_TRANSITIVE")
        }
        result.findings += review_subjects(base, head, args.base, history)
    sys.stdout.write(result.to_json() if args.format == "json" else result.to_markdown(args.base))
    if result.problems:
        return EXIT_CONFIG_ERROR
    return EXIT_CODES[result.severity]


def _add_once(result: Review, problem: str) -> None:
    if problem not in result.problems:
        result.problems.append(problem)


def _git_show(project_dir: Path, ref: str, name: str) -> str | None:
    """A file of the project at ``ref`` (None when it did not exist there); no checkout."""
    shown = subprocess.run(
        ["git", "-C", str(project_dir), "show", f"{ref}:./{name}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if shown.returncode == 0:
        return shown.stdout
    verified = subprocess.run(
        ["git", "-C", str(project_dir), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if verified.returncode != 0:
        raise CommandFailed(EXIT_CONFIG_ERROR, f"--base {ref}: not a commit in this repository")
    return None


def _earlier_versions(project_dir: Path, ref: str, path: str) -> list[tuple[str, str]]:
    """The versions of a schema file before the one at ``ref``, latest first, each labelled by
    its commit: what a transitive compatibility level must still read."""
    # --first-parent: the versions that reached the branch (a merge counts as one, with what it
    # brought), not the commits of merged side branches, whose intermediate versions no
    # deployment of the branch ever registered.
    log = subprocess.run(
        ["git", "-C", str(project_dir), "log", "--first-parent", "--format=%h", ref, "--", path],
        capture_output=True,
        text=True,
        check=False,
    )
    versions = []
    for commit in log.stdout.split()[1:]:  # the first is the one at ``ref``
        text = _git_show(project_dir, commit, path)
        if text is not None:
            versions.append((commit, text))
    return versions


def _base_plan(project_dir: Path, ref: str, stack: str, result: Review) -> Plan | None:
    """The stack's plan at ``ref``; None for a stack (or project) that did not exist there."""
    topology_text = _git_show(project_dir, ref, TOPOLOGY_FILE)
    stack_text = _git_show(project_dir, ref, f"Pulumi.{stack}.yaml")
    if topology_text is None or stack_text is None:
        return None
    label = f"{ref}:Pulumi.{stack}.yaml"
    topology_label = f"{ref}:{TOPOLOGY_FILE}"
    try:
        topology = topology_from_data(parse_yaml(topology_text, topology_label), topology_label)
        config = (parse_yaml(stack_text, label) or {}).get("config", {})
        settings = settings_from_config(config, label)
        schemas = load_event_schemas(
            topology, lambda path: _git_show(project_dir, ref, path), f"{ref}:{TOPOLOGY_FILE}"
        )
        return resolve_plan(
            topology, checked_stack(stack, label, settings, topology, config_keys=config), schemas
        )
    except ConfigError as error:
        # Not this change's fault: review against nothing, and say so (once for the topology).
        first = error.problems[0]
        which = "" if first.file == topology_label else f"{stack}: "
        _add_once(result, f"{which}the base {ref} does not resolve ({first}); not reviewed")
        return None
