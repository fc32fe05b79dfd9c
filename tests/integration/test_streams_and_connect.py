"""A real Kafka Streams application and a real Kafka Connect worker, each run with exactly the
grants the plan gives its kind of service, and once per grant with that grant missing.

Each run gets a domain of its own, so no internal topic, group or offset of an earlier run can
stand in for a grant.
"""

from __future__ import annotations

import itertools
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from infra.live.kafka_broker import Broker, missing_tools
from infra.plan.model import AclBinding, Plan, ServicePlan
from tests.broker_setup import deploy_plan
from tests.integration.kafka_apps import client_properties, free_port, java, rest, wait_for, write_properties
from tests.project_files import Project, add_streams_and_connect

if missing_tools():
    pytest.skip("needs Java and Maven for the Streams and Connect clients", allow_module_level=True)

RUNS = itertools.count()


def with_apps(domain: str) -> Callable[[dict[str, Any]], None]:
    def edit(topology: dict[str, Any]) -> None:
        topology["domain"] = domain
        add_streams_and_connect(topology)

    return edit


def fresh_plan(tmp_path: Path) -> Plan:
    domain = f"apps{next(RUNS)}x{secrets.token_hex(2)}"
    (tmp_path / domain).mkdir()
    return Project(tmp_path / domain).edit_topology(with_apps(domain)).plan("local")


def grants_of(service: str) -> list[str]:
    """The grant ids of a service, from the plan of the repository's topology with the apps added."""
    with tempfile.TemporaryDirectory() as directory:
        plan = Project(Path(directory)).edit_topology(with_apps("ids")).plan("local")
    return [grant_id(acl) for acl in plan.acls if acl.service == service]


def grant_id(acl: AclBinding) -> str:
    """The grant without the run's names: e.g. "TOPIC PREFIXED <application.id>- CREATE"."""
    return f"{acl.resource_type} {acl.pattern_type} {acl.resource_name.split('.', 1)[-1]} {acl.operation}"


def deploy(broker: Broker, plan: Plan, service: str = "", without: str | None = None) -> dict[str, str]:
    """The plan on the broker, less one grant of ``service``; every service's password."""
    acls = [acl for acl in plan.acls if without is None or (acl.service, grant_id(acl)) != (service, without)]
    assert without is None or len(acls) == len(plan.acls) - 1, without
    return deploy_plan(broker, plan.model_copy(update={"acls": acls}))


def produce(broker: Broker, topic: str, values: list[str]) -> None:
    producer = Producer(broker.client_config())
    for index, value in enumerate(values):
        producer.produce(topic, key=str(index), value=value)
    assert producer.flush(15) == 0


# --- Kafka Streams -------------------------------------------------------------------------


def run_counter(
    broker: Broker,
    plan: Plan,
    password: str,
    work: Path,
    *,
    timeout: float = 45,
    keep_running_until: Callable[[], object] | None = None,
) -> tuple[bool, str]:
    """Run CountApp as the `counter` service: True once its counts of three words are on the output.
    ``keep_running_until``: once counted, the app keeps running until this holds (at most 20 s)."""
    service = plan.service("counter")
    env = service.env
    properties = client_properties(broker, service.principal, password) | {
        "application.id": env["KAFKA_STREAMS_APPLICATION_ID"],
        "processing.guarantee": env["KAFKA_STREAMS_PROCESSING_GUARANTEE"],
        "state.dir": str(work / "state"),
        "commit.interval.ms": "200",
        "repartition.purge.interval.ms": "500",
        "input.topic": service.consumes[0],
        "output.topic": service.produces[0],
    }
    produce(broker, service.consumes[0], [f"word{i % 3}" for i in range(9)])
    consumer = Consumer(
        broker.client_config()
        | {
            "group.id": f"check-{secrets.token_hex(3)}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([service.produces[0]])
    counts: dict[str, str] = {}
    with java(work, "CountApp", str(write_properties(work / "counter.properties", properties))) as app:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(counts) < 3 and "FAILED" not in app.output():
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                counts[message.key().decode()] = message.value().decode()
        if keep_running_until is not None and len(counts) == 3:
            wait_for(keep_running_until, timeout=20)
        log = app.output()
    consumer.close()
    return len(counts) == 3 and "FAILED" not in log, log[-1500:]


def test_a_streams_app_runs_exactly_once_with_its_generated_grants(broker: Broker, tmp_path: Path) -> None:
    plan = fresh_plan(tmp_path)
    passwords = deploy(broker, plan)
    processed, log = run_counter(broker, plan, passwords["counter"], tmp_path)
    assert processed, log


@pytest.mark.parametrize("grant", [g for g in grants_of("counter") if not g.endswith(" DELETE")])
def test_the_streams_app_fails_without_any_one_grant(broker: Broker, tmp_path: Path, grant: str) -> None:
    plan = fresh_plan(tmp_path)
    passwords = deploy(broker, plan, "counter", without=grant)
    processed, _ = run_counter(broker, plan, passwords["counter"], tmp_path, timeout=30)
    assert not processed, f"still works without {grant}"


def watermarks(broker: Broker, topic: str) -> list[tuple[int, int]]:
    """(low, high) offsets of every partition of ``topic``."""
    partitions = broker.admin().list_topics(topic, timeout=10).topics[topic].partitions
    consumer = Consumer(broker.client_config() | {"group.id": f"offsets-{secrets.token_hex(3)}"})
    try:
        return [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in sorted(partitions)
        ]
    finally:
        consumer.close()


def repartition_purged(broker: Broker, plan: Plan) -> int:
    """How many records Streams has deleted from the front of its repartition topic."""
    prefix = plan.service("counter").env["KAFKA_STREAMS_APPLICATION_ID"] + "-"
    names = broker.admin().list_topics(timeout=10).topics
    repartition = next(name for name in names if name.startswith(prefix) and name.endswith("-repartition"))
    return sum(low for low, _ in watermarks(broker, repartition))


@pytest.mark.parametrize("with_delete", [True, False])
def test_streams_purges_its_repartition_topic_only_with_delete(
    broker: Broker, tmp_path: Path, with_delete: bool
) -> None:
    """Streams makes repartition topics with unlimited retention and deletes what it consumed:
    without DELETE it still runs, but the topic grows forever."""
    plan = fresh_plan(tmp_path)
    delete = next(g for g in grants_of("counter") if g.endswith(" DELETE"))
    passwords = deploy(broker, plan, "counter", without=None if with_delete else delete)
    # Streams purges on a commit after the repartition records are consumed: the app keeps
    # running until that shows, or for 20 s without it, and the broker's state after it stops
    # is the answer.
    processed, log = run_counter(
        broker,
        plan,
        passwords["counter"],
        tmp_path,
        keep_running_until=lambda: repartition_purged(broker, plan),
    )
    assert processed, log
    assert (repartition_purged(broker, plan) > 0) == with_delete, log


# --- Kafka Connect -------------------------------------------------------------------------


def run_worker(broker: Broker, plan: Plan, password: str, work: Path) -> dict[str, object]:
    """A distributed Connect worker as the `sink` service, a file source and a file sink connector."""
    service: ServicePlan = plan.service("sink")
    env = service.env
    client = client_properties(broker, service.principal, password)
    port = free_port()
    properties = dict(client)
    for prefix in ("producer.", "consumer.", "admin."):
        properties |= {prefix + key: value for key, value in client.items()}
    properties |= {
        "group.id": env["KAFKA_CONNECT_GROUP_ID"],
        "config.storage.topic": env["KAFKA_CONNECT_CONFIG_TOPIC"],
        "offset.storage.topic": env["KAFKA_CONNECT_OFFSET_TOPIC"],
        "status.storage.topic": env["KAFKA_CONNECT_STATUS_TOPIC"],
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "listeners": f"http://127.0.0.1:{port}",
        "offset.flush.interval.ms": "500",
    }
    source_file, sink_file = work / "source.txt", work / "sink.txt"
    source_file.write_text("alpha\nbeta\ngamma\n")
    produce(broker, service.consumes[0], ["one", "two", "three"])
    connector = env["KAFKA_CONNECT_CONNECTOR_PREFIX"]
    base = f"http://127.0.0.1:{port}"
    result: dict[str, object] = {}
    config = write_properties(work / "worker.properties", properties)
    with java(work, "org.apache.kafka.connect.cli.ConnectDistributed", str(config)) as worker:
        result["worker up"] = wait_for(lambda: rest(f"{base}/connectors")[0] == 200, timeout=60)
        if result["worker up"]:
            source = {
                "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
                "file": str(source_file),
                "topic": service.produces[0],
            }
            sink = {
                "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
                "file": str(sink_file),
                "topics": service.consumes[0],
            }
            rest(f"{base}/connectors", {"name": f"{connector}file-source", "config": source}, "POST")
            rest(f"{base}/connectors", {"name": f"{connector}file-sink", "config": sink}, "POST")
            result["source to topic"] = wait_for(
                lambda: record_count(broker, service.produces[0]) == 3, timeout=30
            )
            result["topic to sink"] = wait_for(
                lambda: sink_file.exists() and len(sink_file.read_text().split()) == 3, timeout=30
            )
            status = rest(f"{base}/connectors/{connector}file-source/status")[1]
            result["status"] = isinstance(status, dict) and status["connector"]["state"] == "RUNNING"

            def source_offsets() -> bool:
                offsets = rest(f"{base}/connectors/{connector}file-source/offsets")[1]
                return isinstance(offsets, dict) and len(offsets.get("offsets", [])) == 1

            # Committed every offset.flush.interval.ms, so the first look can come too early.
            result["source offsets"] = wait_for(source_offsets, timeout=15)
        result["log"] = worker.output()[-1500:]
    return result


def record_count(broker: Broker, topic: str) -> int:
    return sum(high - low for low, high in watermarks(broker, topic))


CONNECT_CHECKS = ("worker up", "source to topic", "topic to sink", "status", "source offsets")


def test_a_connect_worker_runs_its_connectors_with_its_generated_grants(
    broker: Broker, tmp_path: Path
) -> None:
    plan = fresh_plan(tmp_path)
    passwords = deploy(broker, plan)
    result = run_worker(broker, plan, passwords["sink"], tmp_path)
    assert all(result.get(check) for check in CONNECT_CHECKS), result


@pytest.mark.parametrize("grant", grants_of("sink"))
def test_the_connect_worker_fails_without_any_one_grant(broker: Broker, tmp_path: Path, grant: str) -> None:
    """Without the offset or status topic grants the connectors still move data, but the worker
    loses their committed offsets (a restart re-reads from the start) or their status."""
    plan = fresh_plan(tmp_path)
    passwords = deploy(broker, plan, "sink", without=grant)
    result = run_worker(broker, plan, passwords["sink"], tmp_path)
    assert not all(result.get(check) for check in CONNECT_CHECKS), f"still works without {grant}"
