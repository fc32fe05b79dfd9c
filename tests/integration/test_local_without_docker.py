"""`make local` where no Docker engine runs: `python -m infra local up --runtime java` starts
Apache Kafka on the local stack's ports with the plan applied, and `local down` stops it."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from infra.compose import local_password_default
from infra.kafka_broker import Broker, missing_tools
from infra.plan_model import Plan
from tests.integration import access_checks as check
from tests.project_files import Project


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra", "--project-dir", str(project.root), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


@pytest.fixture(scope="module")
def local_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    if missing_tools():
        pytest.skip("needs Java and Maven")
    project = Project(tmp_path_factory.mktemp("local"))
    open_port, secure_port = free_port(), free_port()
    project.edit_settings(
        "local",
        lambda s: s["kafka"]["local"].update(
            external_bootstrap=f"localhost:{open_port}", secure_external_bootstrap=f"localhost:{secure_port}"
        ),
    )
    started = cli(project, "local", "up", "--runtime", "java")
    assert started.returncode == 0, started.stderr
    assert "Stop it with `make local-down`" in started.stdout
    yield project
    cli(project, "local", "down", "--runtime", "java")


def secure_broker(plan: Plan) -> Broker:
    return Broker(
        bootstrap=plan.cluster.local_settings().secure_external_bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        admin_user="admin",
        admin_password="local-dev-only-admin",  # pragma: allowlist secret - the compose default
        description="local Kafka, secure listener",
    )


def test_the_open_listener_holds_every_topic_of_the_plan(local_project: Project) -> None:
    plan = local_project.plan("local")
    open_admin = AdminClient({"bootstrap.servers": plan.cluster.local_settings().external_bootstrap})
    topics = open_admin.list_topics(timeout=15).topics
    assert {t.name: len(topics[t.name].partitions) for t in plan.topics} == {
        t.name: t.partitions for t in plan.topics
    }


def test_the_secure_listener_enforces_the_plans_acls_with_the_local_passwords(local_project: Project) -> None:
    plan = local_project.plan("local")
    broker = secure_broker(plan)
    api = plan.service("api")
    password = local_password_default("api")
    assert check.can_produce(broker, api.principal, password, api.produces[0])
    assert not check.can_produce(broker, api.principal, password, plan.topic("context.vectorized").name)


def test_a_second_up_says_it_is_running_and_down_stops_it(local_project: Project) -> None:
    again = cli(local_project, "local", "up", "--runtime", "java")
    assert again.returncode == 0 and "already running" in again.stdout
    stopped = cli(local_project, "local", "down", "--runtime", "java")
    assert stopped.returncode == 0 and "stopped Apache Kafka" in stopped.stdout
    port = int(local_project.plan("local").cluster.local_settings().external_bootstrap.rsplit(":", 1)[1])
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "nothing listens any more"
    assert (Path(local_project.root) / "build" / "local-kafka" / "broker.log").exists()
