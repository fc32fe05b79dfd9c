"""`import`: a topology.yaml from a running cluster, and for a stack the overrides and the
`adopt` list that let its first deployment take over what exists instead of creating it."""

from __future__ import annotations

import argparse
import copy
import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from infra.commands.common import (
    EXIT_CONFIG_ERROR,
    EXIT_OK,
    CommandFailed,
)
from infra.commands.live import add_cluster_arguments, read_live_cluster
from infra.live.importer import adoption, import_topology, stack_overrides
from infra.live.live_cluster import LiveCluster, connection
from infra.model.settings import AdoptSettings
from infra.model.stacks import (
    SETTINGS_KEY,
    TOPOLOGY_FILE,
    checked_stack,
    settings_from_config,
    stack_document,
)
from infra.model.topology import Topology, load_topology, topology_from_data
from infra.plan.resolve import resolve_plan


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "import", help="write a topology (and a stack's overrides and adopt list) from a live cluster"
    )
    parser.add_argument(
        "--domain", help="topics named '<domain>.<key>' get key <key> (default: the most common)"
    )
    parser.add_argument(
        "--include",
        action="append",
        type=re.compile,
        help="only topics whose name this regular expression finds (repeatable; default: all)",
    )
    parser.add_argument(
        "--output",
        "--out",
        dest="out",
        type=Path,
        help="write the topology to this file (default: standard output); never over an existing "
        "file without --force",
    )
    parser.add_argument("--force", action="store_true", help="overwrite the --output file")
    parser.add_argument(
        "--topology",
        type=Path,
        help="use this topology instead of making one (a second environment's cluster)",
    )
    parser.add_argument("--stack", help="also write this stack's topic overrides and adopt list")
    parser.add_argument(
        "--settings-out", type=Path, help="where to write them (default: import.<stack>.yaml)"
    )
    add_cluster_arguments(parser)


def run(args: argparse.Namespace, project_dir: Path) -> int:
    _refuse_to_overwrite(args, project_dir)
    broker = connection(args.bootstrap_servers, args.security_protocol, args.sasl_mechanism, args.username)
    if broker is None:
        raise CommandFailed(
            EXIT_CONFIG_ERROR, "no cluster given: --bootstrap-servers or KAFKA_BOOTSTRAP_SERVERS"
        )
    live = read_live_cluster(broker, args.timeout)

    if args.topology is not None:
        topology = load_topology(args.topology)
    else:
        domain = args.domain or _likely_domain(live)
        result = import_topology(live, domain, admin_principals={broker.admin_user}, include=args.include)
        for line in result.report:
            print(f"import: {line}", file=sys.stderr)
        # The same checks as `validate`: what import writes must load.
        topology = topology_from_data(result.topology, str(args.out or "topology.yaml"))
        text = _yaml(result.topology)
        if args.out is None:
            sys.stdout.write(text)
        else:
            args.out.write_text(text)
            print(
                f"import: wrote {args.out} ({len(topology.topics)} topics, {len(topology.services)} services)"
            )
    if args.stack:
        out = args.settings_out or project_dir / f"import.{args.stack}.yaml"
        out.write_text(_stack_settings(project_dir, args.stack, topology, live))
        print(f"import: wrote {out}: merge it into Pulumi.{args.stack}.yaml under {SETTINGS_KEY}")
    return EXIT_OK


def _refuse_to_overwrite(args: argparse.Namespace, project_dir: Path) -> None:
    """Before reading anything: never replace a file the user did not ask to replace."""
    if args.out is not None and args.out.exists() and not args.force:
        raise CommandFailed(EXIT_CONFIG_ERROR, f"{args.out} exists: pass --force to overwrite it")
    if args.out is None and args.topology is None and _stdout_is(project_dir / TOPOLOGY_FILE):
        raise CommandFailed(
            EXIT_CONFIG_ERROR,
            f"standard output is {TOPOLOGY_FILE}, which the shell emptied before this command ran: "
            f"restore it (`git checkout {TOPOLOGY_FILE}`) and use --output FILE instead of `>`",
        )


def _stdout_is(path: Path) -> bool:
    try:
        return path.exists() and os.path.samestat(os.fstat(sys.stdout.fileno()), path.stat())
    except (OSError, ValueError):  # no file descriptor behind stdout (e.g. captured)
        return False


def _likely_domain(live: LiveCluster) -> str:
    firsts = Counter(name.split(".", 1)[0] for name in live.topics if "." in name)
    return firsts.most_common(1)[0][0] if firsts else "imported"


def _stack_settings(project_dir: Path, stack: str, topology: Topology, live: LiveCluster) -> str:
    name, label, document = stack_document(project_dir, stack)
    config = copy.deepcopy(document.get("config", {}))
    settings_data: dict[str, Any] = config.get(SETTINGS_KEY, {})
    settings = settings_from_config(config, label)
    overrides = stack_overrides(live, topology, settings)
    topics = settings_data.setdefault("topics", {})
    merged = topics.setdefault("overrides", {})
    for key, values in overrides.items():
        merged[key] = {**merged.get(key, {}), **values}
    # A fresh adopt list replaces whatever the stack file holds now.
    fresh = settings_from_config(config, label).model_copy(update={"adopt": AdoptSettings()})
    adopt = adoption(
        live, resolve_plan(topology, checked_stack(name, label, fresh, topology, config_keys=config))
    )
    snippet: dict[str, Any] = {}
    if overrides:
        snippet["topics"] = {"overrides": overrides}
    snippet["adopt"] = adopt
    header = (
        f"# From `python -m infra import --stack {stack}`: merge into {label} under {SETTINGS_KEY}.\n"
        "# adopt: what already exists and the next deployment imports instead of creating;\n"
        "# remove it after that deployment.\n"
    )
    return header + _yaml(snippet)


def _yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)
