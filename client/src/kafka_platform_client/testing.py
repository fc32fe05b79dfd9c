"""A test double for a service's own unit tests: the real routing, backend and dual-write logic
over in-memory transports that record what was published, by transport. No broker, no mocks of
confluent-kafka. What it records went through the real publisher's checks: the key, the JSON
encoding every transport gets (a payload Kafka would refuse is refused here too) and a `direct`
event's registered handler.

    from kafka_platform_client import publish_event, testing

    def test_mood_is_published() -> None:
        with testing.recording(testing.settings({"user.mood.created": {"transport": "kafka",
                "topic": "aura360.user.events", "key": "user:{user_id}"}})) as published:
            my_view(...)   # calls publish_event("user.mood.created", {...})
        assert published.events("kafka") == ["user.mood.created"]
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kafka_platform_client import publisher as _publisher
from kafka_platform_client.publisher import CeleryTask, KafkaRecord, Publisher, Transports
from kafka_platform_client.settings import ClientSettings


@dataclass(frozen=True)
class Sent:
    event_type: str
    payload: dict[str, Any]
    destination: str  # the topic, the Celery task, the Redis channel or "direct"
    key: str | None = None


@dataclass
class MemoryTransports(Transports):
    """Records each write; a transport named in `failing` raises its error instead."""

    sent: dict[str, list[Sent]] = field(default_factory=lambda: {name: [] for name in _publisher.TRANSPORTS})
    failing: dict[str, Exception] = field(default_factory=dict)
    closed: bool = False

    def _record(self, transport: str, sent: Sent) -> None:
        if transport in self.failing:
            raise self.failing[transport]
        self.sent[transport].append(sent)

    def kafka(self, record: KafkaRecord) -> tuple[int, int]:
        body = json.loads(record.value)
        self._record("kafka", Sent(record.event_type, body["payload"], record.topic, record.key))
        return 0, len(self.sent["kafka"]) - 1

    def celery(self, task: CeleryTask) -> None:
        self._record("celery", Sent(task.name, task.payload, task.queue))

    def redis(self, channel: str, body: bytes) -> None:
        decoded = json.loads(body)
        self._record("redis", Sent(decoded["event_type"], decoded["payload"], channel))

    def close(self) -> None:
        self.closed = True


class RecordingPublisher(Publisher):
    """A Publisher whose writes land in `sent` (by transport: kafka, celery, redis, direct)."""

    def __init__(self, settings: ClientSettings, **kwargs: Any) -> None:
        self.memory = MemoryTransports()
        super().__init__(settings, transports=lambda _: self.memory, **kwargs)

    @property
    def sent(self) -> dict[str, list[Sent]]:
        return self.memory.sent

    def events(self, transport: str) -> list[str]:
        """The event types written to `transport`, in order (Celery: the task names)."""
        return [sent.event_type for sent in self.memory.sent[transport]]

    def fail(self, transport: str, error: Exception | None = None) -> None:
        """Make writes to `transport` raise (as a broker that is down would)."""
        self.memory.failing[transport] = error or ConnectionError(f"{transport} is down (test double)")

    def _call_direct(self, event_type: str, payload: dict[str, Any]) -> None:
        handler = self._direct_handler(event_type)  # no handler: the real publisher's error
        self.memory._record("direct", Sent(event_type, payload, "direct"))
        handler(payload)


def settings(
    routing: Mapping[str, Mapping[str, str]],
    *,
    backend: str = "kafka",
    dual_write: bool = False,
    **env: str,
) -> ClientSettings:
    """Settings for a unit test: this routing and backend on a made-up local stack; `env` adds
    or replaces variables."""
    base = {
        "MESSAGING_BACKEND": backend,
        "MESSAGING_DUAL_WRITE": "true" if dual_write else "false",
        "MESSAGING_ROUTING": json.dumps(routing),
        "KAFKA_BROKER_URL": "localhost:9092",
        "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
        "KAFKA_CLIENT_ID": "test",
        "KAFKA_PARTITIONER": "murmur2_random",
        "CELERY_BROKER_URL": "redis://localhost:6379/1",
        "REDIS_URL": "redis://localhost:6379/0",
    }
    return ClientSettings.from_env(base | env)


@contextmanager
def recording(settings: ClientSettings) -> Iterator[RecordingPublisher]:
    """`publish_event` records into the yielded publisher inside the block."""
    recorder = RecordingPublisher(settings)
    previous = _publisher.use(recorder, close_previous=False)
    try:
        yield recorder
    finally:
        _publisher.use(previous, close_previous=False)
        recorder.close()
