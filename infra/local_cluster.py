"""The local stack's Kafka where no Docker engine runs: Apache Kafka from its Maven Central jars,
on the local stack's ports, holding the local plan as docker-compose.kafka.yml's two profiles do.

- the open listener (`external_bootstrap`, localhost:19092): no authentication, like the default
  compose profile; every topic of the plan;
- the SASL listener (`secure_external_bootstrap`, localhost:19093): SCRAM-SHA-256 with one user
  per service and exactly the plan's ACLs, like the `secure` profile, with the same
  LOCAL-DEV-ONLY passwords (`.env.example`).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from infra.apply_plan import apply_plan
from infra.compose import ADMIN_USER, COMPOSE_FILE, LOCAL_PASSWORD_DEFAULT, local_password_default
from infra.kafka_broker import (
    Broker,
    BrokerOptions,
    missing_tools,
    running_pid,
    start_detached,
    stop_detached,
)
from infra.plan_model import Plan

STATE_DIR = Path("build") / "local-kafka"
LOCAL_ADMIN_PASSWORD = f"{LOCAL_PASSWORD_DEFAULT}-admin"  # pragma: allowlist secret - the compose default
SECURE_MECHANISM = "SCRAM-SHA-256"  # what the compose `secure` profile's users use


@dataclass(frozen=True)
class LocalCluster:
    open_bootstrap: str
    secure_bootstrap: str
    broker: Broker


def docker_engine_running() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def compose(project_dir: Path, *args: str) -> int:
    return subprocess.run(
        ["docker", "compose", "-f", str(project_dir / COMPOSE_FILE), *args], check=False
    ).returncode


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def start(project_dir: Path, plan: Plan) -> LocalCluster:
    """Start the broker in the background and apply the plan; raises RuntimeError with the reason."""
    missing = missing_tools()
    if missing:
        raise RuntimeError(f"neither a Docker engine nor {' and '.join(missing)} to start Apache Kafka")
    local = plan.cluster.local_settings()
    options = BrokerOptions(
        port=_port(local.secure_external_bootstrap),
        plaintext_port=_port(local.external_bootstrap),
        admin_user=ADMIN_USER,
        admin_password=LOCAL_ADMIN_PASSWORD,
    )
    broker = start_detached(project_dir / STATE_DIR, options)
    passwords = {service.name: local_password_default(service.name) for service in plan.services}
    apply_plan(broker.admin(), plan, SECURE_MECHANISM, passwords)
    return LocalCluster(
        open_bootstrap=local.external_bootstrap,
        secure_bootstrap=local.secure_external_bootstrap,
        broker=broker,
    )


def is_running(project_dir: Path) -> bool:
    return running_pid(project_dir / STATE_DIR) is not None


def stop(project_dir: Path) -> bool:
    return stop_detached(project_dir / STATE_DIR)
