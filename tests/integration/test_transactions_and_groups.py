"""Per-instance transactional ids and consumer groups, on the real broker with the plan's grants."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from infra.live.cluster_admin import connect, end_offsets, first_committed_record_times
from infra.live.kafka_broker import Broker
from infra.live.live_cluster import admin_login
from infra.plan.model import Plan
from tests.broker_setup import deploy_plan
from tests.integration import access_checks as check
from tests.project_files import Project


@pytest.fixture(scope="module")
def instance_plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    """The repository's topology under its own domain, with guardian joining one group per instance."""

    def per_instance(topology: dict[str, Any]) -> None:
        topology["domain"] = "instances"
        topology["services"]["guardian"]["consumer_group_per_instance"] = True

    return Project(tmp_path_factory.mktemp("instances")).edit_topology(per_instance).plan("local")


@pytest.fixture(scope="module")
def instance_passwords(broker: Broker, instance_plan: Plan) -> Iterator[dict[str, str]]:
    yield deploy_plan(broker, instance_plan)


def test_two_replicas_each_commit_with_their_own_suffix(
    broker: Broker, instance_plan: Plan, instance_passwords: dict[str, str]
) -> None:
    service = instance_plan.service("context-aggregator")
    prefix = service.transactional_id_prefix
    assert prefix == "instances.context-aggregator."
    creds = (broker, service.principal, instance_passwords[service.name])
    topic = service.produces[0]
    first = check.transactional_producer(*creds, f"{prefix}pod-a")
    second = check.transactional_producer(*creds, f"{prefix}pod-b")
    for _ in range(2):  # interleaved, as two live replicas would
        check.commit_one(first, topic)
        check.commit_one(second, topic)


def test_one_shared_transactional_id_fences_the_first_replica(
    broker: Broker, instance_plan: Plan, instance_passwords: dict[str, str]
) -> None:
    """Why the id is per instance: what one literal id per service did to the second replica."""
    service = instance_plan.service("context-aggregator")
    creds = (broker, service.principal, instance_passwords[service.name])
    shared = f"{service.transactional_id_prefix}shared"
    first = check.transactional_producer(*creds, shared)
    check.transactional_producer(*creds, shared)  # the second replica starts
    with pytest.raises(KafkaException) as fenced:
        check.commit_one(first, service.produces[0])
    assert fenced.value.args[0].code() in {KafkaError._FENCED, KafkaError.PRODUCER_FENCED}
    first.purge()  # the fenced record can never be delivered


@pytest.mark.parametrize("outside", ["instances.context-aggregator", "instances.context-aggregatorx.a"])
def test_an_id_outside_the_prefix_is_denied(
    broker: Broker, instance_plan: Plan, instance_passwords: dict[str, str], outside: str
) -> None:
    service = instance_plan.service("context-aggregator")
    assert not check.can_use_transactional_id(
        broker, service.principal, instance_passwords[service.name], outside
    )


def test_per_instance_groups_join_under_the_prefix_only(
    broker: Broker, instance_plan: Plan, instance_passwords: dict[str, str]
) -> None:
    service = instance_plan.service("guardian")
    assert service.consumer_group_prefix == "instances.guardian."
    creds = (broker, service.principal, instance_passwords[service.name])
    topic = service.consumes[0]
    _seed(broker, topic)
    assert check.can_consume(*creds, topic, f"{service.consumer_group_prefix}pod-a")
    assert check.can_consume(*creds, topic, f"{service.consumer_group_prefix}pod-b")
    assert not check.can_consume(*creds, topic, "instances.guardian"), "the bare stem is not under the prefix"
    assert not check.can_consume(*creds, topic, "instances.api"), "another service's group"


def _seed(broker: Broker, topic: str) -> None:
    from confluent_kafka import Producer

    producer = Producer(broker.client_config())
    producer.produce(topic, key=b"seed", value=b"seed")
    assert producer.flush(30) == 0


def test_after_a_transactions_last_record_a_committed_reader_finds_nothing_to_copy(
    broker: Broker, instance_plan: Plan, instance_passwords: dict[str, str]
) -> None:
    """Why `migration status` reads records, not offsets, to call a transactional topic drained:
    each commit or abort marker takes an offset that MirrorMaker never copies."""
    service = instance_plan.service("context-aggregator")
    producer = check.transactional_producer(
        broker, service.principal, instance_passwords[service.name], f"{service.transactional_id_prefix}drain"
    )
    topic = service.produces[0]
    admin, _ = connect(admin_login(broker))

    def end_after(records_and_marker: int) -> int:
        # The coordinator writes the marker after the commit (or abort) returns.
        deadline = time.monotonic() + check.TIMEOUT_S
        while (offset := end_offsets(admin, [topic])[(topic, 0)]) < before + records_and_marker:
            assert time.monotonic() < deadline, f"the marker never reached the log: {offset} after {before}"
            time.sleep(0.1)
        return offset

    def first_after(offset: int) -> int | None:
        found = first_committed_record_times(
            broker.reader("drain-check", committed_to_end=True), {(topic, 0): offset}, check.TIMEOUT_S
        )
        assert (topic, 0) in found, "the partition was not read to its end in time"
        return found[(topic, 0)]

    before = end_offsets(admin, [topic]).get((topic, 0), 0)
    producer.begin_transaction()
    producer.produce(topic, partition=0, key=b"txn", value=b"committed")
    producer.commit_transaction(check.TIMEOUT_S)
    assert end_after(2) == before + 2
    record, marker = before, before + 1
    assert isinstance(first_after(record), int)  # the committed record is still to copy from there
    assert first_after(marker) is None  # past it: only the commit marker, though end > position

    producer.begin_transaction()
    producer.produce(topic, partition=0, key=b"txn", value=b"aborted")
    assert producer.flush(check.TIMEOUT_S) == 0  # on the log before the abort, else it is only dropped
    producer.abort_transaction(check.TIMEOUT_S)
    assert end_after(4) == before + 4
    assert first_after(marker) is None  # the aborted record and its marker are nothing to copy
