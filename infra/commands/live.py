"""What `import` and `drift` share: how to reach a running cluster, and reading it."""

from __future__ import annotations

import argparse

from infra.commands.common import EXIT_CONFIG_ERROR, EXIT_STALE, CommandFailed
from infra.kafka_broker import Broker
from infra.live_cluster import ClusterUnreachable, LiveCluster, read_cluster


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
