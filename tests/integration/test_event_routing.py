"""MESSAGING_ROUTING proven end to end on real Kafka and real Redis, through the shipped client.

Each service's `Publisher` (kafka_platform_client) gets exactly the env a service receives (its
ConfigMap and Secret) and publishes every event its routing lists. A Redis subscriber on every
channel and a Kafka consumer on every topic then see exactly what the routing says: `both` on
both, `redis` only on Redis, `kafka` only on Kafka with the documented key, `direct` on neither
(its in-process handler is called instead); with MESSAGING_BACKEND=disabled nothing anywhere.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from confluent_kafka import Consumer
from kafka_platform_client import Publisher
from kafka_platform_client.settings import ClientSettings

from infra.live.kafka_broker import Broker
from infra.plan.model import Plan
from tests.broker_setup import deploy_plan
from tests.integration.client_env import TOPOLOGIES, broker_project, service_env


@dataclass(frozen=True)
class Seen:
    kafka: dict[str, tuple[str, str | None]]  # event id -> (topic, key)
    redis: dict[str, str]  # event id -> channel
    direct: set[str]  # event ids whose in-process handler ran


def payload_for(route: dict[str, str]) -> dict[str, Any]:
    """Every field the event's key template names, plus an id to find it by."""
    fields = re.findall(r"{(\w+)}", route.get("key", ""))
    return {"id": secrets.token_hex(6), **{field: f"{field}-{secrets.token_hex(2)}" for field in fields}}


def publish_every_event(
    plan: Plan, passwords: dict[str, str], called: set[str]
) -> dict[str, tuple[str, dict[str, Any], dict[str, str]]]:
    """Each event once, from the first service whose routing lists it: id -> (event, payload, route)."""
    published: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {}
    done: set[str] = set()
    for service in plan.services:
        env = service_env(service, passwords)
        with Publisher(ClientSettings.from_env(env)) as publisher:
            for event, route in sorted(json.loads(env["MESSAGING_ROUTING"]).items()):
                if event in done:
                    continue
                if route["transport"] == "direct":
                    publisher.register_direct(event, lambda payload: called.add(payload["id"]))
                payload = payload_for(route)
                publisher.publish(event, payload)
                published[payload["id"]] = (event, payload, route)
                done.add(event)
    return published


def read_everything(
    broker: Broker, plan: Plan, subscriber: Any, expected_on_kafka: int, direct: set[str]
) -> Seen:
    kafka: dict[str, tuple[str, str | None]] = {}
    consumer = Consumer(
        broker.client_config()
        | {"group.id": f"routing-{secrets.token_hex(3)}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic.name for topic in plan.topics])
    deadline, quiet_until = time.monotonic() + 30, time.monotonic() + 3
    while time.monotonic() < min(deadline, quiet_until) or len(kafka) < expected_on_kafka:
        if time.monotonic() > deadline:
            break
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            body = json.loads(message.value())["payload"]
            key = message.key().decode() if message.key() is not None else None
            kafka[body["id"]] = (message.topic(), key)
            quiet_until = time.monotonic() + 2
    consumer.close()
    channels: dict[str, str] = {}
    quiet_until = time.monotonic() + 2
    while time.monotonic() < quiet_until:
        message = subscriber.get_message(timeout=0.2)
        if message is not None and message["type"] == "message":
            channels[json.loads(message["data"])["payload"]["id"]] = message["channel"].decode()
            quiet_until = time.monotonic() + 1
    return Seen(kafka, channels, direct)


def subscribe_to_every_channel(redis_url: str, plan: Plan) -> Any:
    channels = {
        route["channel"]
        for service in plan.services
        for route in json.loads(service.env["MESSAGING_ROUTING"]).values()
        if "channel" in route
    }
    subscriber = redis.Redis.from_url(redis_url).pubsub()
    if channels:
        subscriber.subscribe(*sorted(channels))
    # Publishing before Redis confirms a subscription would lose the message.
    confirmed, deadline = 0, time.monotonic() + 10
    while confirmed < len(channels) and time.monotonic() < deadline:
        message = subscriber.get_message(timeout=0.5)
        confirmed += message is not None and message["type"] == "subscribe"
    assert confirmed == len(channels), "Redis did not confirm every subscription"
    return subscriber


def run_routing(plan: Plan, broker: Broker, redis_url: str) -> tuple[dict[str, Any], Seen]:
    passwords = deploy_plan(broker, plan)
    subscriber = subscribe_to_every_channel(redis_url, plan)
    called: set[str] = set()
    published = publish_every_event(plan, passwords, called)
    enabled = plan.messaging_backend == "kafka"
    on_kafka = (
        sum(route["transport"] in {"kafka", "both"} for _, _, route in published.values()) if enabled else 0
    )
    seen = read_everything(broker, plan, subscriber, on_kafka, called)
    subscriber.close()
    return published, seen


@pytest.mark.parametrize("topology_name", sorted(TOPOLOGIES))
def test_every_event_goes_exactly_where_its_routing_says(
    broker: Broker, redis_server: str, tmp_path: Path, topology_name: str, routing_report: list[str]
) -> None:
    plan = broker_project(tmp_path / "project", topology_name, broker, redis_server, backend="kafka")
    published, seen = run_routing(plan, broker, redis_server)
    assert {event for event, _, _ in published.values()} == set(
        yaml.safe_load(TOPOLOGIES[topology_name].read_text())["events"]
    )

    routing_report.append(f"{topology_name} ({plan.domain}): event, routing, seen on Kafka, seen on Redis")
    for event_id, (event, payload, route) in sorted(published.items(), key=lambda item: item[1][0]):
        transport = route["transport"]
        on_kafka, on_redis = seen.kafka.get(event_id), seen.redis.get(event_id)
        kafka_seen = f"{on_kafka[0]} key {on_kafka[1]}" if on_kafka else "-"
        routing_report.append(f"  {event:28} {transport:6} kafka: {kafka_seen:60} redis: {on_redis or '-'}")
        if transport in {"kafka", "both"}:
            assert on_kafka == (route["topic"], route["key"].format(**payload) if "key" in route else None), (
                event
            )
        else:
            assert on_kafka is None, f"{event} ({transport}) must not reach Kafka"
        if transport in {"redis", "both"}:
            assert on_redis == route["channel"], event
        else:
            assert on_redis is None, f"{event} ({transport}) must not reach Redis"
        assert (event_id in seen.direct) == (transport == "direct"), event
    transports = {route["transport"] for _, _, route in published.values()}
    if topology_name == "vibestream":
        assert transports == {"kafka", "redis", "both", "direct"}, "the hybrid shape covers every transport"


def test_a_disabled_backend_publishes_nothing_anywhere(
    broker: Broker, redis_server: str, tmp_path: Path
) -> None:
    plan = broker_project(tmp_path / "project", "vibestream", broker, redis_server, backend="disabled")
    published, seen = run_routing(plan, broker, redis_server)
    assert published, "every event was offered to the publisher"
    assert (seen.kafka, seen.redis) == ({}, {})
    direct = {event_id for event_id, (_, _, route) in published.items() if route["transport"] == "direct"}
    assert seen.direct == direct != set(), "a direct call is not messaging: no switch turns it off"
