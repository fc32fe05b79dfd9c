"""A reference publisher: what a service does with the env it receives, and nothing more.

It reads MESSAGING_BACKEND, MESSAGING_ROUTING, the KAFKA_* connection (SASL credentials from its
Secret) and REDIS_URL, and publishes an event where the routing says: `kafka` to its topic with
the documented key, `redis` to its channel, `both` to both, `direct` nowhere (in process).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import redis
from confluent_kafka import Producer


class ReferencePublisher:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.enabled = env["MESSAGING_BACKEND"] == "kafka"
        self.routing: dict[str, dict[str, str]] = json.loads(env["MESSAGING_ROUTING"])
        config = {
            "bootstrap.servers": env["KAFKA_BROKER_URL"],
            "security.protocol": env["KAFKA_SECURITY_PROTOCOL"],
        }
        if "KAFKA_SASL_MECHANISM" in env:
            config |= {
                "sasl.mechanism": env["KAFKA_SASL_MECHANISM"],
                "sasl.username": env["KAFKA_SASL_USERNAME"],
                "sasl.password": env["KAFKA_SASL_PASSWORD"],
            }
        if env.get("KAFKA_ENABLE_IDEMPOTENCE") == "true":
            config["enable.idempotence"] = "true"
        self.producer = Producer(config)
        self.redis = redis.Redis.from_url(env["REDIS_URL"]) if "REDIS_URL" in env else None

    def publish(self, event: str, payload: dict[str, Any]) -> None:
        if not self.enabled:
            return
        route = self.routing[event]  # an event not in its routing is not this service's to publish
        body = json.dumps({"event": event, **payload}, sort_keys=True)
        if route["transport"] in {"kafka", "both"}:
            key = route["key"].format(**payload) if "key" in route else None
            self.producer.produce(route["topic"], key=key, value=body)
        if route["transport"] in {"redis", "both"}:
            if self.redis is None:
                raise RuntimeError(f"{event} goes to Redis but this service has no REDIS_URL")
            self.redis.publish(route["channel"], body)

    def close(self) -> None:
        if self.producer.flush(15) != 0:
            raise RuntimeError("messages still undelivered after 15 s")
        if self.redis is not None:
            self.redis.close()
