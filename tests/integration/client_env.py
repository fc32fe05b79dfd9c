"""The env a deployed service gets, for tests that run the client (kafka_platform_client) as a
service would: a project on the test broker (and the test Redis) whose plan gives each service
its ConfigMap and Secret values."""

from __future__ import annotations

import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import Consumer

from infra.live.kafka_broker import Broker
from infra.plan.model import SASL_PASSWORD_ENV, SASL_USERNAME_ENV, Plan, ServicePlan
from infra.plan.resolve import load_plan
from tests.e2e.engine import existing_cluster_settings
from tests.project_files import ENCRYPTED, REPO

TOPOLOGIES = {
    "aura360": REPO / "topology.yaml",
    "vibestream": REPO / "examples" / "vibestream" / "topology.yaml",
}
STACK = "routing"
# The Redis list where the flip test's Celery worker (fallback_worker.py) records handled ids.
RECORDED = "handled"


def broker_project(
    root: Path,
    topology_name: str,
    broker: Broker,
    redis_url: str,
    backend: str,
    *,
    domain: str | None = None,
    dual_write: bool = False,
) -> Plan:
    """The topology under a domain of its own (or `domain`, to re-plan the same project with
    another setting), as a `provider: kafka` stack on the test broker with the test Redis (its
    database 0 for channels, 1 for the Celery broker): its plan's env is what a deployed service
    would receive."""
    topology = yaml.safe_load(TOPOLOGIES[topology_name].read_text())
    topology["domain"] = domain or f"{topology['domain']}{secrets.token_hex(3)}"
    root.mkdir(parents=True, exist_ok=True)
    (root / "topology.yaml").write_text(yaml.safe_dump(topology, sort_keys=False))
    settings = existing_cluster_settings(broker)
    settings["messaging"] = {
        "backend": backend,
        "dual_write": dual_write,
        "redis": {"url": redis_url},
        "celery_broker": {"url": redis_url.rsplit("/", 1)[0] + "/1"},
    }
    document = {
        "config": {
            "kafka-platform:kafkaAdminPassword": {"secure": ENCRYPTED},
            "kafka-platform:settings": settings,
        }
    }
    (root / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return load_plan(root, STACK)


def service_env(service: ServicePlan, passwords: dict[str, str]) -> dict[str, str]:
    """The service's ConfigMap and Secret as its pod sees them (`envFrom` both)."""
    return service.env | {SASL_USERNAME_ENV: service.principal, SASL_PASSWORD_ENV: passwords[service.name]}


def process_env(env: dict[str, str], **extra: str) -> dict[str, str]:
    """A service process's whole environment: its contract env and what Python needs, nothing
    of the test run's own (e.g. its KAFKA_* broker settings)."""
    return (
        {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "PYTHONPATH": str(REPO)}
        | env
        | extra
    )


class ServiceProcess:
    """`python -m tests.integration.client_service ...` as a deployed service runs: its stdout
    read line by line (one confirmed event id per line), stopped with SIGTERM as a rollout does."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.client_service", *args],
            cwd=REPO,
            env=process_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())

    def wait_for(self, count: int | None = None, until: str | None = None, timeout: float = 60) -> list[str]:
        """Until `count` lines or the line `until` arrived (or the process ended): all lines so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (count is not None and len(self.seen) >= count) or (until is not None and until in self.seen):
                break
            try:
                self.seen.append(self.lines.get(timeout=0.2))
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
        return self.seen

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then every line it printed; returns its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code

    def errors(self) -> str:
        assert self.process.stderr is not None
        return self.process.stderr.read() if self.process.poll() is not None else ""


def records(broker: Broker, topic: str, expected: int, timeout: float = 30) -> list[Any]:
    """Every record of `topic` (at least `expected`, then until it stays quiet)."""
    consumer = Consumer(
        broker.client_config()
        | {"group.id": f"reader-{secrets.token_hex(3)}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    found: list[Any] = []
    deadline, quiet_until = time.monotonic() + timeout, time.monotonic() + 3
    while time.monotonic() < deadline and (len(found) < expected or time.monotonic() < quiet_until):
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            found.append(message)
            quiet_until = time.monotonic() + 1.5
    consumer.close()
    return found


def ids(messages: list[Any]) -> list[str]:
    return [json.loads(message.value())["payload"]["id"] for message in messages]
