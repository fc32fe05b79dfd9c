"""`lag` on the real broker with real clients: a consumer that stops while its producer goes on
is reported with both numbers and exit 3; once it has caught up, exit 0; a group nobody is in
is reported as having no active consumer."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from infra.live.kafka_broker import Broker
from infra.plan.model import Plan
from tests.broker_setup import deploy_plan
from tests.eventually import eventually
from tests.integration.admin_env import admin_env
from tests.project_files import Project

pytestmark = pytest.mark.integration


def lag(broker: Broker, project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    env = admin_env(broker)
    command = [
        sys.executable,
        "-m",
        "infra",
        "--project-dir",
        str(project.root),
        "lag",
        "--stack",
        "local",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=120)


def report(broker: Broker, project: Project) -> tuple[int, dict[str, Any]]:
    result = lag(broker, project, "--format", "json")
    assert result.returncode in (0, 3), result.stderr
    consumers = json.loads(result.stdout)["consumers"]
    assert len(consumers) == 1, "only api is watched"
    return result.returncode, consumers[0]


@pytest.fixture
def watched(broker: Broker, tmp_path: Path) -> Iterator[tuple[Project, Plan]]:
    """A fresh domain; only api is watched, on guardian.responses: 10 messages, 5 seconds."""
    project = Project(tmp_path)

    def topology(t: dict[str, Any]) -> None:
        t["domain"] = f"lag{secrets.token_hex(3)}"
        for name, service in t["services"].items():
            service["monitoring"] = {"enabled": name == "api"}
        t["services"]["api"]["monitoring"]["lag"] = {"messages": 10, "seconds": 5}

    project.edit_topology(topology)
    plan = project.plan("local")
    deploy_plan(broker, plan)
    yield project, plan


def produce(broker: Broker, topic: str, count: int) -> None:
    producer = Producer(broker.client_config())
    for index in range(count):
        producer.produce(topic, f"reply-{index}".encode(), key=f"correlation-{index}".encode())
    assert producer.flush(30) == 0


def consumer_of(broker: Broker, group: str, topic: str) -> Consumer:
    consumer = Consumer(
        broker.client_config()
        | {"group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": "false"}
    )
    consumer.subscribe([topic])
    return consumer


def consume_all(consumer: Consumer, count: int) -> None:
    seen = 0
    deadline = time.monotonic() + 60
    while seen < count and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            seen += 1
            consumer.commit(message, asynchronous=False)
    assert seen == count


def test_a_stopped_consumer_is_reported_until_it_catches_up(
    broker: Broker, watched: tuple[Project, Plan]
) -> None:
    project, plan = watched
    api = plan.service("api")
    topic, group = api.consumes[0], api.consumer_group
    assert group is not None

    code, api_lag = report(broker, project)
    assert code == 3 and api_lag["problems"] == ["no active consumer: the group does not exist"]

    produce(broker, topic, 20)
    running = consumer_of(broker, group, topic)
    consume_all(running, 20)
    code, api_lag = eventually(lambda: report(broker, project), lambda r: r[0] == 0, what="api caught up")
    assert (api_lag["messages"], api_lag["members"], api_lag["seconds"]) == (0, 1, None)

    running.close()  # the consumer stops...
    produce(broker, topic, 50)  # ...while its producer goes on
    time.sleep(6)
    code, api_lag = report(broker, project)
    assert code == 3
    assert api_lag["messages"] == 50 and api_lag["seconds"] >= 6
    assert api_lag["problems"][:2] == [
        "no active consumer: the group has no member",
        "50 messages behind > 10",
    ]
    assert api_lag["problems"][2].startswith("oldest unconsumed ") and api_lag["problems"][2].endswith("> 5s")
    table = lag(broker, project)
    assert table.returncode == 3
    row = next(line for line in table.stdout.splitlines() if line.startswith("api "))
    assert group in row and topic in row and "50 (max 10)" in row and "(max 5s)" in row

    caught_up = consumer_of(broker, group, topic)
    consume_all(caught_up, 50)
    code, api_lag = eventually(
        lambda: report(broker, project), lambda r: r[0] == 0, what="api caught up again"
    )
    assert api_lag["problems"] == [] and api_lag["messages"] == 0

    caught_up.close()
    code, api_lag = eventually(
        lambda: report(broker, project), lambda r: r[1]["members"] == 0, what="group empty"
    )
    assert code == 3 and api_lag["problems"] == ["no active consumer: the group has no member"]
