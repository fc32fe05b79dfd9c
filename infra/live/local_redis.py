"""The local stack's Redis on the path without Docker: Debian's (or any) `redis-server`, started
beside the Java broker when the plan routes events to Redis channels or has the Celery fallback,
as docker-compose.kafka.yml's `redis` service is (append-only file, the same host port)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from infra.live.kafka_broker import PortInUse, port_holder, ports_in_use, running_pid, stop_detached
from infra.plan.model import Plan

PID_FILE = "redis.pid"
PORT_FILE = "redis.port"
LOG_FILE = "redis.log"
READY_WITHIN = 20.0  # seconds; a redis-server answers PING well within a second


class RedisMissing(RuntimeError):
    """The plan needs Redis and no `redis-server` is installed."""


def redis_port(plan: Plan) -> int | None:
    """The host port of the local Redis the plan's URLs name; None when the plan needs none."""
    if not any(c is not None and c.host_url is not None for c in (plan.redis, plan.celery_broker)):
        return None
    return plan.cluster.local_settings().redis_host_port


def holder(port: int) -> str | None:
    """What holds a local port, a Redis server named as one."""
    return "a Redis server" if _answers_ping(port) else port_holder(port)


def running_port(work: Path) -> int | None:
    """The port this checkout's Redis listens on, if it runs."""
    if running_pid(work, PID_FILE) is None:
        return None
    saved = work / PORT_FILE
    return int(saved.read_text()) if saved.is_file() else None


def start(work: Path, port: int) -> bool:
    """Start redis-server on ``port`` with its data in ``work`` unless this checkout's runs
    there already (False then); one running on another port is restarted on this one (the data
    stays). Refuses (PortInUse) a port another process holds, and RedisMissing without
    redis-server."""
    if running_pid(work, PID_FILE) is not None:
        if running_port(work) == port:
            return False
        stop(work)
    executable = shutil.which("redis-server")
    if executable is None:
        raise RedisMissing(
            f"the plan needs Redis on localhost:{port} (events routed to a channel, or the Celery "
            "fallback) and redis-server is not installed: install it (Debian: "
            "`apt-get install redis-server`) and run `make local` again; until then nothing "
            f"listens at the services' REDIS_URL / CELERY_BROKER_URL"
        )
    taken = ports_in_use([port], holder)
    if taken:
        raise PortInUse(
            f"{taken}, so this checkout's Redis cannot start; stop what holds it (`make local-down` in its "
            "checkout) or give this stack another port (kafka.local.redis_host_port in Pulumi.local.yaml)"
        )
    work.mkdir(parents=True, exist_ok=True)
    with (work / LOG_FILE).open("w") as log:
        process = subprocess.Popen(
            [
                executable,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--dir", str(work.resolve()),
                "--appendonly", "yes",
                "--save", "",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    (work / PID_FILE).write_text(f"{process.pid}\n")
    (work / PORT_FILE).write_text(f"{port}\n")
    _wait_until_ready(port, process, work / LOG_FILE)
    return True


def _wait_until_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while True:
        if process.poll() is not None:
            (log.parent / PID_FILE).unlink(missing_ok=True)
            tail = log.read_text(errors="replace").strip().splitlines()[-1:]
            raise RuntimeError(f"redis-server exited with code {process.returncode}: {' '.join(tail)}")
        if _answers_ping(port):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"redis-server did not answer on port {port} within {READY_WITHIN:.0f} s; see {log}"
            )
        time.sleep(0.1)


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def stop(work: Path) -> bool:
    """Stop the Redis `start` started (SIGTERM: it flushes its append-only file); False when
    none was running."""
    return stop_detached(work, timeout=10, pid_name=PID_FILE)
