"""`local up|down|reset`: the local stack's Kafka, with Docker Compose when an engine runs,
otherwise Apache Kafka started from its jars (Java and Maven). `up` converges a running broker
to the plan; `reset` deletes its data."""

from __future__ import annotations

import argparse
from pathlib import Path

from confluent_kafka import KafkaException

from infra.commands.common import EXIT_CONFIG_ERROR, EXIT_OK, EXIT_STALE, CommandFailed, load_plan
from infra.commands.compose import write_generated_files
from infra.live import local_cluster
from infra.live.converge import ConvergeRefused
from infra.live.live_cluster import ClusterUnreachable
from infra.plan.model import Plan
from infra.render.compose import COMPOSE_FILE


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("local", help="start (or converge), stop or reset the local stack's Kafka")
    parser.add_argument(
        "action",
        choices=("up", "down", "reset"),
        help="up: start it, or apply the plan to the running broker; down: stop it (data kept); "
        "reset: stop it and delete its data",
    )
    parser.add_argument("--stack", default="local", help="a local stack (default: local)")
    parser.add_argument(
        "--prune",
        action="store_true",
        help="also delete topics, ACLs and users the plan no longer has (default: list them)",
    )
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
        raise CommandFailed(
            EXIT_CONFIG_ERROR, f"stack '{args.stack}' is not a local stack ({plan.cluster.provider})"
        )
    runtime = args.runtime
    if runtime == "auto":
        runtime = "compose" if local_cluster.docker_engine_running() else "java"
    if args.action == "down":
        return _down(project_dir, runtime)
    if args.action == "reset":
        return _reset(project_dir, runtime)
    if runtime == "compose":
        return _compose_up(project_dir, plan, args.prune)
    return _java_up(project_dir, plan, args.prune)


def _compose_up(project_dir: Path, plan: Plan, prune: bool) -> int:
    if prune:
        raise CommandFailed(
            EXIT_CONFIG_ERROR,
            "--prune needs the java runtime; with Compose, `make local-reset` starts from a clean slate",
        )
    for name in write_generated_files(project_dir, plan):
        print(f"regenerated {name} from the topology (commit it with your change)")
    # Both profiles: the secure broker holds the same users and ACLs as the Java path's.
    code = local_cluster.compose(project_dir, "up", "-d", "--wait")
    if code == EXIT_OK:
        print(f"started {COMPOSE_FILE} (both profiles); the init jobs re-run when the topology changes")
        _print_users(project_dir, plan, plan.cluster.local_settings().secure_external_bootstrap)
    return code


def _java_up(project_dir: Path, plan: Plan, prune: bool) -> int:
    try:
        cluster = local_cluster.up(project_dir, plan, prune=prune)
    except ConvergeRefused as refused:
        raise CommandFailed(EXIT_CONFIG_ERROR, str(refused)) from None
    except (RuntimeError, ClusterUnreachable) as exc:
        raise CommandFailed(EXIT_STALE, f"cannot start the local Kafka: {exc}") from None
    except KafkaException as exc:
        raise CommandFailed(
            EXIT_STALE, f"applying the plan to the local Kafka failed: {exc.args[0].str()}"
        ) from None
    # The compose mirror stays current on this path too (CI's `compose --check` reads it); only
    # once the broker took the plan, so a refused run changes nothing.
    for name in write_generated_files(project_dir, plan):
        print(f"regenerated {name} from the topology (commit it with your change)")
    if cluster.started:
        print(
            "No Docker engine: started Apache Kafka from its jars (the same listeners as "
            f"{COMPOSE_FILE}).\n"
            f"  {cluster.open_bootstrap}  no authentication, every topic of the plan\n"
            f"  {cluster.secure_bootstrap}  SASL_PLAINTEXT + {local_cluster.SECURE_MECHANISM}, one user per "
            "service, exactly the plan's ACLs\n"
            f"Data and log in {local_cluster.STATE_DIR}/ (kept by `make local-down`, deleted by "
            "`make local-reset`)."
        )
    else:
        print(f"Apache Kafka from {local_cluster.STATE_DIR} is running: applied the plan to it.")
    if cluster.redis is not None:
        print(cluster.redis)
    for line in cluster.registry:
        print(line)
    for line in cluster.changes.lines:
        print(f"  {line}")
    if not cluster.changes.lines and cluster.changes.left_alone:
        print("  nothing to create or change; the plan no longer has these, and they stay:")
    elif not cluster.changes.lines:
        print("  nothing to change: the broker matches the plan")
    for line in cluster.changes.left_alone:
        print(f"  left alone: {line} (`kafka-platform local up --prune` deletes it)")
    _print_users(project_dir, plan, cluster.secure_bootstrap)
    return EXIT_OK


def _print_users(project_dir: Path, plan: Plan, secure_bootstrap: str) -> None:
    users = local_cluster.local_users(project_dir, plan)
    print(
        f"Users on {secure_bootstrap} ({local_cluster.SECURE_MECHANISM}; LOCAL-DEV-ONLY passwords "
        "from .env, else .env.example's defaults):"
    )
    for user in users:
        source = ".env" if user.from_env_file else "default"
        print(f"  {user.service or '(admin)':<22} {user.username}  [{source}]")
    print(
        "Env for a service on the secure listener: "
        "kafka-platform env --stack local --host --secure --service <name>"
    )


def _down(project_dir: Path, runtime: str) -> int:
    if local_cluster.stop(project_dir):
        print(
            f"stopped the local Kafka ({local_cluster.STATE_DIR}; "
            "its data stays: `make local-reset` deletes it)"
        )
        return EXIT_OK
    if runtime == "compose":
        return local_cluster.compose(project_dir, "down")
    print("no local Kafka is running")
    return EXIT_OK


def _reset(project_dir: Path, runtime: str) -> int:
    if runtime == "compose":
        return local_cluster.compose(project_dir, "down", "--volumes")
    if local_cluster.reset(project_dir):
        print(
            f"stopped Apache Kafka and deleted {local_cluster.STATE_DIR}/: the next `make local` starts empty"
        )
    else:
        print("no local Kafka data to delete")
    return EXIT_OK
