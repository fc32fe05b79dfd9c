"""The environment a user exports to point `import`, `drift` and `lag` at a cluster as its admin."""

from __future__ import annotations

import os

from infra.live.kafka_broker import Broker


def admin_env(broker: Broker) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "KAFKA_SECURITY_PROTOCOL": broker.security_protocol,
        "KAFKA_SASL_MECHANISM": broker.sasl_mechanism,
        "KAFKA_ADMIN_USERNAME": broker.admin_user,
        "KAFKA_ADMIN_PASSWORD": broker.admin_password,
    }
