"""`local up|down`: the local stack's Kafka, with Docker Compose when an engine runs, otherwise
Apache Kafka started from its jars (Java and Maven)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra import local_cluster
from infra.commands.common import EXIT_CONFIG_ERROR, EXIT_OK, EXIT_STALE, load_plan
from infra.compose import COMPOSE_FILE


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("local", help="start or stop the local stack's Kafka")
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--stack", default="local")
    parser.add_argument(
        "--runtime",
        choices=("auto", "compose", "java"),
        default="auto",
        help="compose (needs a Docker engine), java (Apache Kafka from Maven Central jars), "
        "or auto: compose when a Docker engine runs",
    )


def run(args: argparse.Namespace, project_dir: Path) -> int:
    plan = load_plan(project_dir, args.stack)
    if plan.cluster.provider != "local":
        print(f"stack '{args.stack}' is not a local stack ({plan.cluster.provider})", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    runtime = args.runtime
    if runtime == "auto":
        runtime = "compose" if local_cluster.docker_engine_running() else "java"
    if args.action == "down":
        return _down(project_dir, runtime)
    if runtime == "compose":
        return local_cluster.compose(project_dir, "up", "-d", "--wait")
    if local_cluster.is_running(project_dir):
        print(f"Apache Kafka from {local_cluster.STATE_DIR} is already running; `make local-down` stops it")
        return EXIT_OK
    try:
        cluster = local_cluster.start(project_dir, plan)
    except RuntimeError as exc:
        print(f"cannot start the local Kafka: {exc}", file=sys.stderr)
        return EXIT_STALE
    print(
        f"No Docker engine: started {cluster.broker.description.split(' (')[0]} from its jars instead of "
        f"{COMPOSE_FILE}.\n"
        f"  {cluster.open_bootstrap}  no authentication, every topic of the plan (like the default profile)\n"
        f"  {cluster.secure_bootstrap}  SASL_PLAINTEXT + {local_cluster.SECURE_MECHANISM}, one user per "
        "service and exactly the plan's ACLs (like the `secure` profile; passwords in .env.example)\n"
        f"Data and log in {local_cluster.STATE_DIR}/. Stop it with `make local-down`."
    )
    return EXIT_OK


def _down(project_dir: Path, runtime: str) -> int:
    if local_cluster.stop(project_dir):
        print(f"stopped Apache Kafka ({local_cluster.STATE_DIR}; its data stays until you delete it)")
        return EXIT_OK
    if runtime == "compose":
        return local_cluster.compose(project_dir, "down")
    print("no local Kafka is running")
    return EXIT_OK
