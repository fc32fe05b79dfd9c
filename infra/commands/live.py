"""What `import` and `drift` share: how to reach a running cluster, and reading it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from infra.commands.common import EXIT_CONFIG_ERROR, EXIT_STALE, CommandFailed
from infra.live.kafka_broker import Broker
from infra.live.live_cluster import ClusterUnreachable, LiveCluster, connection, read_cluster
from infra.live.local_cluster import stranger_on
from infra.model.cluster_connection import ExistingClusterSettings
from infra.plan.model import BOOTSTRAP_TOKEN, Plan


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """How to reach a live cluster; the admin password only ever comes from KAFKA_ADMIN_PASSWORD."""
    group = parser.add_argument_group(
        "cluster", "default: the stack's own settings, else KAFKA_BOOTSTRAP_SERVERS and friends"
    )
    group.add_argument("--bootstrap-servers", help="host:port[,host:port] (env KAFKA_BOOTSTRAP_SERVERS)")
    group.add_argument(
        "--security-protocol", help="SASL_SSL, SASL_PLAINTEXT, ... (env KAFKA_SECURITY_PROTOCOL)"
    )
    group.add_argument(
        "--sasl-mechanism", help="SCRAM-SHA-512, SCRAM-SHA-256, PLAIN (env KAFKA_SASL_MECHANISM)"
    )
    group.add_argument("--username", help="the admin identity (env KAFKA_ADMIN_USERNAME)")
    group.add_argument(
        "--timeout", type=float, default=20, help="seconds to wait for the cluster (default 20)"
    )


def read_live_cluster(broker: Broker, timeout: float) -> LiveCluster:
    if broker.security_protocol.startswith("SASL") and not (broker.admin_user and broker.admin_password):
        raise CommandFailed(
            EXIT_CONFIG_ERROR,
            f"{broker.security_protocol} to {broker.bootstrap} needs the admin's --username (or "
            "KAFKA_ADMIN_USERNAME) and KAFKA_ADMIN_PASSWORD; a listener without authentication "
            "takes --security-protocol PLAINTEXT",
        )
    try:
        return read_cluster(broker, timeout=timeout)
    except ClusterUnreachable as error:
        raise CommandFailed(EXIT_STALE, str(error)) from None


def stack_broker(args: argparse.Namespace, plan: Plan, project_dir: Path) -> Broker:
    """The admin connection to a stack's cluster (see `_stack_broker`), or exit 2 saying how to
    give it. A local stack's listener must answer with this checkout's broker (exit 1 if not)."""
    broker = _stack_broker(args, plan)
    if broker is not None and plan.cluster.provider == "local":
        explicit = bool(args.bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
        stranger = stranger_on(project_dir, broker.bootstrap, explicit=explicit)
        if stranger is not None:
            raise CommandFailed(EXIT_STALE, stranger)
    if broker is None:
        raise CommandFailed(
            EXIT_CONFIG_ERROR,
            f"the address of stack {plan.stack}'s cluster is known only after deployment: pass "
            "--bootstrap-servers (e.g. `pulumi stack output bootstrap_servers`) or KAFKA_BOOTSTRAP_SERVERS",
        )
    return broker


def _stack_broker(args: argparse.Namespace, plan: Plan) -> Broker | None:
    """Flags and environment first; else what the stack's own settings say (existing clusters, and
    a local stack's open listener)."""
    cluster = plan.cluster
    # A local stack's listeners are known: the open one needs no login.
    protocol = args.security_protocol or os.environ.get("KAFKA_SECURITY_PROTOCOL")
    if protocol is None and cluster.provider == "local":
        protocol = "PLAINTEXT"
    if args.bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return connection(args.bootstrap_servers, protocol, args.sasl_mechanism, args.username)
    if cluster.provider == "local":
        return connection(cluster.local_settings().external_bootstrap, protocol)
    settings = cluster.provider_settings
    if cluster.bootstrap == BOOTSTRAP_TOKEN or not isinstance(settings, ExistingClusterSettings):
        return None
    return connection(
        cluster.bootstrap,
        args.security_protocol or cluster.security_protocol,
        args.sasl_mechanism or cluster.sasl_mechanism,
        args.username or settings.admin.username,
    )
