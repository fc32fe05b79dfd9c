"""The client (kafka_platform_client) on real Kafka and real Redis with a service's exactly
generated env: what a failed write leaves behind, threads and forks, a consumer that crashes
mid-batch, and keys on the partitions a Java producer picks."""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from kafka_platform_client import Published, Publisher, PublishError
from kafka_platform_client.settings import ClientSettings

from infra.live.kafka_broker import Broker
from infra.plan.model import SASL_PASSWORD_ENV, SASL_USERNAME_ENV, Plan
from tests.broker_setup import deploy_plan
from tests.integration.client_env import ServiceProcess, broker_project, ids, records, service_env
from tests.integration.kafka_apps import client_properties, free_port, java, write_properties


@dataclass(frozen=True)
class Deployed:
    plan: Plan
    passwords: dict[str, str]

    def env(self, service: str, **changes: str) -> dict[str, str]:
        return service_env(self.plan.service(service), self.passwords) | changes

    def settings(self, service: str, **changes: str) -> ClientSettings:
        return ClientSettings.from_env(self.env(service, **changes))

    def topic(self, key: str) -> str:
        return next(topic.name for topic in self.plan.topics if topic.key == key)


@pytest.fixture(scope="module")
def aura360(broker: Broker, redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    plan = broker_project(tmp_path_factory.mktemp("aura360"), "aura360", broker, redis_server, "kafka")
    return Deployed(plan, deploy_plan(broker, plan))


@pytest.fixture(scope="module")
def vibestream(broker: Broker, redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    plan = broker_project(tmp_path_factory.mktemp("vibestream"), "vibestream", broker, redis_server, "kafka")
    return Deployed(plan, deploy_plan(broker, plan))


@pytest.fixture
def realtime(vibestream: Deployed, redis_server: str) -> Iterator[Any]:
    """A subscriber on the `both` event's channel, confirmed before anything is published."""
    subscriber = redis.Redis.from_url(redis_server).pubsub()
    subscriber.subscribe("vibestream:listen:realtime")
    deadline = time.monotonic() + 10
    while (message := subscriber.get_message(timeout=0.5)) is None or message["type"] != "subscribe":
        assert time.monotonic() < deadline, "Redis did not confirm the subscription"
    yield subscriber
    subscriber.close()


def channel_ids(subscriber: Any) -> list[str]:
    found, quiet_until = [], time.monotonic() + 2
    while time.monotonic() < quiet_until:
        message = subscriber.get_message(timeout=0.2)
        if message is not None and message["type"] == "message":
            found.append(json.loads(message["data"])["payload"]["id"])
    return found


def test_a_redis_failure_after_kafka_names_both_and_the_retry_writes_redis_once(
    broker: Broker, vibestream: Deployed, realtime: Any
) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    payload = {"id": secrets.token_hex(4), "user_id": "u-1"}
    with (
        Publisher(vibestream.settings("player-api", REDIS_URL=down)) as publisher,
        pytest.raises(PublishError) as raised,
    ):
        publisher.publish("ListenSessionCompleted", payload)
    assert (raised.value.delivered, raised.value.undelivered) == (("kafka",), ("redis",))
    assert "redis failed" in str(raised.value)

    with Publisher(vibestream.settings("player-api")) as publisher:
        completed = publisher.publish("ListenSessionCompleted", payload, only=raised.value.undelivered)
    assert completed.delivered == ("redis",)
    on_kafka = [i for i in ids(records(broker, vibestream.topic("listen-sessions"), 1)) if i == payload["id"]]
    assert on_kafka == [payload["id"]], "on Kafka once: the retry did not write it again"
    assert channel_ids(realtime) == [payload["id"]]


def test_a_kafka_failure_sends_nothing_to_redis(broker: Broker, vibestream: Deployed, realtime: Any) -> None:
    # The recommender's credentials may not write listen-sessions: the broker refuses the record.
    recommender = vibestream.plan.service("recommender")
    wrong = {SASL_USERNAME_ENV: recommender.principal, SASL_PASSWORD_ENV: vibestream.passwords["recommender"]}
    payload = {"id": secrets.token_hex(4), "user_id": "u-2"}
    with (
        Publisher(vibestream.settings("player-api", **wrong), delivery_timeout=10) as publisher,
        pytest.raises(PublishError) as raised,
    ):
        publisher.publish("ListenSessionCompleted", payload)
    assert (raised.value.delivered, raised.value.undelivered) == ((), ("kafka", "redis"))
    assert "TOPIC_AUTHORIZATION_FAILED" in str(raised.value)
    assert channel_ids(realtime) == []


def test_a_celery_failure_in_a_dual_write_leaves_the_kafka_write_and_says_so(
    broker: Broker, aura360: Deployed
) -> None:
    down = f"redis://127.0.0.1:{free_port()}/1"
    payload = {"id": secrets.token_hex(4), "user_id": "u-3"}
    started = time.monotonic()
    with (
        Publisher(aura360.settings("api", MESSAGING_DUAL_WRITE="true", CELERY_BROKER_URL=down)) as publisher,
        pytest.raises(PublishError) as raised,
    ):
        publisher.publish("user.mood.created", payload)
    assert (raised.value.delivered, raised.value.undelivered) == (("kafka",), ("celery",))
    assert time.monotonic() - started < 30, "a Celery broker that is down fails the publish, it does not hang"
    assert payload["id"] in ids(records(broker, aura360.topic("user.events"), 1))


def test_threads_share_one_publisher_and_every_event_lands_once_on_its_keys_partition(
    broker: Broker, aura360: Deployed
) -> None:
    run = secrets.token_hex(3)
    with Publisher(aura360.settings("api")) as publisher:

        def publish(number: int) -> tuple[str, Published]:
            payload = {"id": f"{run}-{number}", "user_id": f"user-{number % 11}"}
            return payload["id"], publisher.publish("user.mood.created", payload)

        with ThreadPoolExecutor(max_workers=8) as pool:
            published = dict(pool.map(publish, range(200)))
    messages = [m for m in records(broker, aura360.topic("user.events"), 200) if ids([m])[0].startswith(run)]
    assert sorted(ids(messages)) == sorted(published), "every event exactly once"
    for message in messages:
        place = published[ids([message])[0]]
        assert (message.partition(), message.offset()) == (place.partition, place.offset)
    by_key: dict[bytes, set[int]] = {}
    for message in messages:
        by_key.setdefault(message.key(), set()).add(message.partition())
    assert all(len(partitions) == 1 for partitions in by_key.values()), "one key, one partition"


def test_a_forked_child_publishes_with_its_own_producer(broker: Broker, aura360: Deployed) -> None:
    """Celery's prefork pool forks after the parent published: each child must build its own
    librdkafka handle (the parent's has no threads in the child and would never deliver)."""
    run = secrets.token_hex(3)
    publisher = Publisher(aura360.settings("api"), delivery_timeout=15)
    publisher.publish("user.mood.created", {"id": f"{run}-parent-0", "user_id": "p"})
    children = []
    for child in range(3):
        pid = os.fork()
        if pid == 0:  # the child: publish, flush, leave without running the parent's clean-up
            code = 1
            try:
                for number in range(10):
                    publisher.publish(
                        "user.mood.created", {"id": f"{run}-child{child}-{number}", "user_id": "c"}
                    )
                publisher.close()
                code = 0
            finally:
                os._exit(code)
        children.append(pid)
    exits = [os.waitpid(pid, 0)[1] for pid in children]
    publisher.publish("user.mood.created", {"id": f"{run}-parent-1", "user_id": "p"})
    publisher.close()
    assert exits == [0, 0, 0], "every child delivered its events within the timeout"
    seen = [i for i in ids(records(broker, aura360.topic("user.events"), 32)) if i.startswith(run)]
    assert sorted(seen) == sorted(
        [f"{run}-parent-0", f"{run}-parent-1"] + [f"{run}-child{c}-{n}" for c in range(3) for n in range(10)]
    )


def test_a_consumer_that_crashes_mid_batch_loses_nothing_on_restart(
    broker: Broker, aura360: Deployed
) -> None:
    """The guardian's group reads guardian.requests; one correlation id keeps them on one
    partition, in order. It crashes in the 13th handler, reading batches of 5."""
    published = [f"request-{number}" for number in range(30)]
    with Publisher(aura360.settings("api")) as publisher:
        for event_id in published:
            publisher.publish("guardian.requested", {"id": event_id, "correlation_id": "one-conversation"})
    env = aura360.env("guardian")
    first = ServiceProcess(env, "consume", "13", "5")
    handled_first = first.wait_for(until=published[11])
    assert first.stop() == 3, f"the consumer was meant to crash: {first.errors()}"
    second = ServiceProcess(env, "consume", "0", "5")
    handled_second = second.wait_for(until=published[-1])
    second.stop()
    assert handled_first == published[:12]
    restart = published.index(handled_second[0])
    assert handled_second == published[restart:], "nothing lost, in order"
    assert 12 - 5 < restart <= 12, "it resumes after the last batch it committed, not from the start"


def test_the_clients_keys_land_on_the_partitions_a_java_producer_picks(
    broker: Broker, aura360: Deployed, tmp_path: Path
) -> None:
    users = [f"user-{number}" for number in range(24)]
    topic = aura360.topic("user.events")
    properties = client_properties(broker, aura360.plan.service("api").principal, aura360.passwords["api"])
    with java(
        tmp_path,
        "KeyedProducer",
        str(write_properties(tmp_path / "producer.properties", properties)),
        topic,
        *(f"user:{user}" for user in users),
    ) as producer:
        deadline = time.monotonic() + 120
        while producer.exited() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert producer.exited() == 0, producer.output()
        java_partitions = dict(
            line.split() for line in producer.output().splitlines() if line.startswith("user:")
        )

    def python_partitions(partitioner: str) -> dict[str, str]:
        with Publisher(aura360.settings("api", KAFKA_PARTITIONER=partitioner)) as publisher:
            return {
                f"user:{user}": str(
                    publisher.publish("user.mood.created", {"id": user, "user_id": user}).partition
                )
                for user in users
            }

    assert len(set(java_partitions.values())) > 1, "the keys spread over the topic's partitions"
    assert python_partitions("murmur2_random") == java_partitions
    assert python_partitions("consistent_random") != java_partitions, "librdkafka's default would differ"


def test_threads_sharing_a_publisher_send_to_celery_one_at_a_time_and_every_task_arrives_once(
    aura360: Deployed, redis_server: str
) -> None:
    """Celery and kombu are not thread-safe (a producer's channel shared by threads): the
    publisher serializes its sends. Seen on the real app it built, and on the Celery broker's
    queues (Redis lists), where each event must be once, whole, per queue it went to."""
    run = secrets.token_hex(3)
    overlap: list[int] = []
    with Publisher(aura360.settings("api", MESSAGING_BACKEND="celery")) as publisher:
        publisher.publish("user.mood.created", {"id": f"{run}-first", "user_id": "u"})
        app = publisher.transports()._celery  # type: ignore[attr-defined]  # the real app it built
        send_task = app.send_task
        counting = threading.Lock()
        running = [0]

        def watched(*args: Any, **kwargs: Any) -> Any:
            with counting:
                running[0] += 1
                overlap.append(running[0])  # how many sends run at this moment
            try:
                return send_task(*args, **kwargs)
            finally:
                with counting:
                    running[0] -= 1

        app.send_task = watched

        def publish(number: int) -> str:
            payload = {"id": f"{run}-{number}", "user_id": f"user-{number % 11}"}
            publisher.publish("user.mood.created", payload)
            return payload["id"]

        with ThreadPoolExecutor(max_workers=8) as pool:
            published = [f"{run}-first", *pool.map(publish, range(120))]
    assert max(overlap) == 1, "never two Celery sends at once"
    queues = redis.Redis.from_url(redis_server.rsplit("/", 1)[0] + "/1")
    per_queue: dict[str, list[str]] = {}
    for queue in queues.scan_iter():
        if queues.type(queue) != b"list":
            continue
        for raw in queues.lrange(queue, 0, -1):
            message = json.loads(raw)
            args, _, _ = json.loads(base64.b64decode(message["body"]))
            if str(args[0].get("id", "")).startswith(run):
                per_queue.setdefault(queue.decode(), []).append(args[0]["id"])
    assert per_queue, "the tasks are on the Celery broker"
    for queue, found in per_queue.items():
        assert sorted(found) == sorted(published), queue
