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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
import yaml
from confluent_kafka import Consumer

from infra.live.kafka_broker import Broker
from infra.plan.model import SASL_PASSWORD_ENV, SASL_USERNAME_ENV, Plan, ServicePlan
from infra.plan.resolve import load_plan
from tests.e2e.engine import existing_cluster_settings
from tests.project_files import ENCRYPTED, EXAMPLE, REPO

TOPOLOGIES = {
    "aura360": EXAMPLE / "topology.yaml",
    "vibestream": REPO / "examples" / "vibestream" / "topology.yaml",
}
STACK = "routing"
# The Redis list where the flip test's Celery worker (fallback_worker.py) records handled ids.
RECORDED = "handled"
# Ids the fallback worker's handler fails once before handling them.
FAIL_ONCE = "fail-once-"


def broker_project(
    root: Path,
    topology_name: str,
    broker: Broker,
    redis_url: str,
    backend: str,
    *,
    domain: str | None = None,
    dual_write: bool = False,
    services: dict[str, Any] | None = None,
) -> Plan:
    """The topology under a domain of its own (or `domain`, to re-plan the same project with
    another setting), as a `provider: kafka` stack on the test broker with the test Redis (its
    database 0 for channels, 1 for the Celery broker): its plan's env is what a deployed service
    would receive. `services`: more services, added to the topology's."""
    topology = yaml.safe_load(TOPOLOGIES[topology_name].read_text())
    topology["services"] |= services or {}
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


@contextmanager
def fallback_worker(env: dict[str, str], record_url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A consuming service's Celery worker (prefork, two processes; fallback_worker.py) on its
    env, recording what it handled in the list RECORDED at `record_url` (a Redis database of
    its own: emptied first)."""
    redis.Redis.from_url(record_url).flushdb()
    command = [sys.executable, "-m", "celery", "-A", "tests.integration.fallback_worker", "worker"]
    options = ["--pool", "prefork", "--concurrency", "2", "--loglevel", "WARNING"]
    quiet = ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    with log.open("w") as out:
        process = subprocess.Popen(
            [*command, *options, *quiet],
            cwd=REPO,
            env=process_env(env, FALLBACK_RECORD_URL=record_url),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.terminate()  # a warm shutdown: tasks in hand finish
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode in (0, -signal.SIGTERM), log.read_text()


def publish_phase(env: dict[str, str], first: int, count: int) -> list[str]:
    """A service process on `env` publishing ids from `first` until it confirmed `count`, then
    SIGTERM as a rollout sends (it finishes the event in hand, flushes, exits 0): the ids it
    confirmed."""
    service = ServiceProcess(env, "publish", "user.mood.created", str(first))
    service.wait_for(count)
    code = service.stop()
    assert code == 0 and len(service.seen) >= count, service.errors()
    return service.seen


def handled_by_celery(record_url: str, expected: int, worker: subprocess.Popen[bytes]) -> list[str]:
    """The ids the worker handled, once it has `expected` (and a moment more, for duplicates)."""
    recorded = redis.Redis.from_url(record_url, decode_responses=True)
    deadline = time.monotonic() + 60
    while recorded.llen(RECORDED) < expected and time.monotonic() < deadline:
        assert worker.poll() is None, "the Celery worker died"
        time.sleep(0.2)
    time.sleep(1)
    return [str(value) for value in recorded.lrange(RECORDED, 0, -1)]
