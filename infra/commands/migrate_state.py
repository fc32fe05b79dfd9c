"""`migrate-state`: move a `kafka` or `msk` stack deployed by a release that kept one resource
per topic, ACL and SCRAM user to the grouped layout, without touching the cluster.

It runs `pulumi stack export`, forgets the per-object resources (infra/program/state_migration.py),
keeps the exported state as a backup, and runs `pulumi stack import`. The next `pulumi up`
takes the existing topics, ACLs and users over as they are. Exit 0 when done (or nothing to
do), 1 when the Pulumi CLI fails, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from infra.commands.common import EXIT_CONFIG_ERROR, EXIT_OK, EXIT_STALE, CommandFailed, load_plan
from infra.program.state_migration import GROUPED_PROVIDERS, migrate


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "migrate-state",
        help="move a kafka/msk stack's state to grouped topics and service access (cluster untouched)",
    )
    parser.add_argument("--stack", required=True, help="the Pulumi stack to migrate")
    parser.add_argument("--dry-run", action="store_true", help="say what would be forgotten, change nothing")
    parser.add_argument(
        "--backup",
        type=Path,
        default=None,
        help="where to keep the exported state (default: <stack>.state-before-migration-<time>.json)",
    )


def _pulumi(project_dir: Path, *args: str) -> str:
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise CommandFailed(EXIT_CONFIG_ERROR, "the Pulumi CLI is not on PATH")
    result = subprocess.run(
        [pulumi, *args, "--non-interactive"], cwd=project_dir, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise CommandFailed(EXIT_STALE, f"pulumi {args[0]} {args[1]} failed: {result.stderr.strip()}")
    return result.stdout


def run(args: argparse.Namespace, project_dir: Path) -> int:
    plan = load_plan(project_dir, args.stack)
    if plan.cluster.provider not in GROUPED_PROVIDERS:
        raise CommandFailed(
            EXIT_CONFIG_ERROR,
            f"stack '{args.stack}' uses provider '{plan.cluster.provider}': only kafka and msk stacks group "
            "their topics and ACLs, there is nothing to migrate",
        )
    exported = json.loads(_pulumi(project_dir, "stack", "export", "--stack", args.stack))
    migration = migrate(exported.get("deployment") or {})
    if not migration.needed:
        print(f"stack '{args.stack}' is in the grouped layout already: nothing to do")
        return EXIT_OK
    counts = ", ".join(f"{count} {kind}" for kind, count in sorted(migration.forgotten.items())) or "nothing"
    if args.dry_run:
        print(f"would forget {counts} from the state of stack '{args.stack}' (the cluster is not touched)")
        return EXIT_OK
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    backup = args.backup or project_dir / f"{args.stack}.state-before-migration-{stamp}.json"
    backup.write_text(json.dumps(exported, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    with tempfile.TemporaryDirectory() as directory:
        migrated = Path(directory) / "state.json"
        migrated.write_text(json.dumps({**exported, "deployment": migration.deployment}), encoding="utf-8")
        _pulumi(project_dir, "stack", "import", "--stack", args.stack, "--file", str(migrated))
    print(
        f"forgot {counts} from the state of stack '{args.stack}'; they stay on the cluster, and the next "
        f"`pulumi up` takes them over as grouped topics and service access.\n"
        f"The state before: {backup} (secrets in it stay encrypted); to go back: "
        f"pulumi stack import --stack {args.stack} --file {backup}"
    )
    return EXIT_OK
