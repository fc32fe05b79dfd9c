"""A 10,000-topic estate on a real broker of its own: a KRaft controller refuses one request that
would write more than 10,000 records ("Unable to perform excessively large batch operation"),
so the Kafka-admin core splits every batch. Both shipped paths converge it: the dynamic provider
(MSK and existing-cluster stacks) and `make local`'s converge, topics and 10,000 grants."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic

from infra.live.cluster_admin import read_grants
from infra.live.converge import converge
from infra.live.kafka_broker import Broker, broker_from_environment, local_kafka, missing_tools
from infra.live.live_cluster import read_cluster
from infra.program.admin_api_provider import TopicsProvider
from tests.eventually import eventually
from tests.project_files import Project

ESTATE = 10_000


@pytest.fixture(scope="module")
def estate_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("estate")


@pytest.fixture(scope="module")
def own_broker(estate_dir: Path) -> Iterator[Broker]:
    """Not the session's broker: 10,000 topics would slow every other test's reads."""
    if broker_from_environment() is not None or missing_tools():
        pytest.skip("needs Java and Maven to start a broker of its own")
    with local_kafka(estate_dir) as started:
        yield started


def topics(prefix: str) -> dict[str, Any]:
    return {
        f"{prefix}{index:05d}": {
            "partitions": 1,
            "replication_factor": 1,
            "config": {"retention.ms": "86400000"},
        }
        for index in range(ESTATE)
    }


def test_one_request_of_the_whole_estate_is_refused_by_the_controller(own_broker: Broker) -> None:
    admin = own_broker.admin()
    batch = [NewTopic(name, 1, 1) for name in topics("refused.")]
    futures = admin.create_topics(batch, request_timeout=60)
    with pytest.raises(KafkaException) as refused:
        next(iter(futures.values())).result()
    assert refused.value.args[0].code() == KafkaError.POLICY_VIOLATION
    assert not [name for name in admin.list_topics(timeout=30).topics if name.startswith("refused.")]


def test_the_provider_creates_and_deletes_a_10000_topic_family(own_broker: Broker, estate_dir: Path) -> None:
    provider = TopicsProvider()
    props = {
        "connection": {
            "bootstrap_servers": own_broker.bootstrap.split(","),
            "security_protocol": own_broker.security_protocol,
            "sasl_mechanism": own_broker.sasl_mechanism,
            "username": own_broker.admin_user,
        },
        "admin_password": own_broker.admin_password,
        "family": "estate",
        "topics": topics("estate."),
        "adopt": [],
        "removal": "delete",
        "allowed_removals": [],
    }
    provider.create(props)
    read = provider.read("estate", props).outs
    assert read is not None and read["topics"] == props["topics"]
    provider.delete("estate", props)
    assert not [
        name for name in own_broker.admin().list_topics(timeout=30).topics if name.startswith("estate.")
    ]
    # A deleted partition's files stay open until file.delete.delay.ms (60 s) has passed: the next
    # 10,000 topics beside 10,000 such partitions exceed a 20,000 open-files limit ("Too many open
    # files" takes the broker down), so the next test starts once the broker has let them go.
    eventually(
        lambda: len(list((estate_dir / "data").glob("estate.*-delete"))),
        lambda pending: pending == 0,
        timeout=240,
        what="the broker to remove the deleted topics' files",
    )


def test_make_local_converges_10000_topics_and_their_grants(own_broker: Broker, tmp_path: Path) -> None:
    def estate(topology: dict[str, Any]) -> None:
        topology.update(
            domain="big",
            topics={f"t{index:05d}": {"partitions": 1, "retention": "1d"} for index in range(ESTATE)},
            services={"writer": {"produces": [f"t{index:05d}" for index in range(ESTATE)]}},
            events={},
        )

    plan = Project(tmp_path).edit_topology(estate).plan("local")
    writer = plan.service("writer").principal
    changes = converge(
        own_broker.admin(),
        plan,
        read_cluster(own_broker),
        {writer: secrets.token_urlsafe(12)},
        (own_broker.sasl_mechanism,),
    )
    assert sum(line.startswith("created topic big.") for line in changes.lines) == ESTATE
    assert (
        len([n for n in own_broker.admin().list_topics(timeout=60).topics if n.startswith("big.")]) == ESTATE
    )
    assert len(read_grants(own_broker.admin(), [f"User:{writer}"])) == len(plan.acls) >= ESTATE
