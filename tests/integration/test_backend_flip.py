"""Switching without a code change, as the stories promise: a service publishing continuously
through a flip of MESSAGING_BACKEND kafka -> celery -> kafka publishes every event to one backend
or the other, none lost, counted on a real Kafka broker, a real Redis (the Celery broker) and a
real Celery worker.

The env comes from the platform: the plan of one project whose stack setting `messaging.backend`
changes between the phases (what `pulumi up` writes into the ConfigMap; the Kubernetes life-cycle
test proves the ConfigMap carries the plan's env). Each phase restarts the service with the new
env, as the rollout does, with SIGTERM to the old process.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis

from infra.live.kafka_broker import Broker
from infra.plan.model import Plan
from tests.broker_setup import deploy_plan
from tests.integration.client_env import (
    RECORDED,
    ServiceProcess,
    broker_project,
    ids,
    process_env,
    records,
    service_env,
)
from tests.project_files import REPO

PER_PHASE = 25


@pytest.fixture(scope="module")
def record_url(redis_server: str) -> str:
    """Where the worker's handler records what it handled: database 2 of the test Redis."""
    url = redis_server.rsplit("/", 1)[0] + "/2"
    redis.Redis.from_url(url).delete(RECORDED)
    return url


@pytest.fixture(scope="module")
def plans(broker: Broker, redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Plan]:
    root = tmp_path_factory.mktemp("flip")
    kafka = broker_project(root, "aura360", broker, redis_server, "kafka")
    celery = broker_project(root, "aura360", broker, redis_server, "celery", domain=kafka.domain)
    return {"kafka": kafka, "celery": celery}


@pytest.fixture(scope="module")
def passwords(broker: Broker, plans: dict[str, Plan]) -> dict[str, str]:
    return deploy_plan(broker, plans["kafka"])


@pytest.fixture(scope="module")
def worker(
    plans: dict[str, Plan],
    passwords: dict[str, str],
    record_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[subprocess.Popen[bytes]]:
    """The consuming service (context-aggregator, which reads user.events) with its Celery
    fallback worker: prefork, two processes."""
    env = service_env(plans["celery"].service("context-aggregator"), passwords)
    log = tmp_path_factory.mktemp("worker") / "celery.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tests.integration.fallback_worker",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                "2",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "WARNING",
            ],
            cwd=REPO,
            env=process_env(env, FALLBACK_RECORD_URL=record_url),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    yield process
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    assert process.returncode in (0, -15), log.read_text()


def phase(plan: Plan, passwords: dict[str, str], first: int) -> list[str]:
    """The api service on this plan's env from id `first` until it confirmed PER_PHASE events,
    then SIGTERM (it finishes the event in hand, flushes and exits 0): the ids it confirmed."""
    service = ServiceProcess(
        service_env(plan.service("api"), passwords), "publish", "user.mood.created", str(first)
    )
    service.wait_for(PER_PHASE)
    code = service.stop()
    assert code == 0, service.errors()
    assert len(service.seen) >= PER_PHASE, service.errors()
    return service.seen


def test_a_flip_to_celery_and_back_sends_every_event_to_one_backend_none_lost(
    broker: Broker,
    plans: dict[str, Plan],
    passwords: dict[str, str],
    worker: subprocess.Popen[bytes],
    record_url: str,
) -> None:
    confirmed: dict[str, list[str]] = {}
    first = 0
    for name, backend in (("kafka", "kafka"), ("celery", "celery"), ("kafka again", "kafka")):
        confirmed[name] = phase(plans[backend], passwords, first)
        first += len(confirmed[name])
    published = [event_id for phase_ids in confirmed.values() for event_id in phase_ids]
    assert published == [str(number) for number in range(first)], (
        "the service confirmed every event, in order"
    )

    topic = next(topic.name for topic in plans["kafka"].topics if topic.key == "user.events")
    on_kafka = ids(records(broker, topic, len(confirmed["kafka"]) + len(confirmed["kafka again"])))
    recorded = redis.Redis.from_url(record_url, decode_responses=True)
    deadline = time.monotonic() + 60
    while recorded.llen(RECORDED) < len(confirmed["celery"]) and time.monotonic() < deadline:
        assert worker.poll() is None, "the Celery worker died"
        time.sleep(0.2)
    time.sleep(1)  # anything more would be a duplicate: give it the chance to show
    on_celery = [str(value) for value in recorded.lrange(RECORDED, 0, -1)]

    assert sorted(on_kafka, key=int) == confirmed["kafka"] + confirmed["kafka again"]
    assert sorted(on_celery, key=int) == confirmed["celery"]
    assert sorted(on_kafka + on_celery, key=int) == published, "every event once, on one backend, none lost"
