"""`publish_event`: one call that obeys MESSAGING_BACKEND, MESSAGING_DUAL_WRITE and the event's
route in MESSAGING_ROUTING (docs/env-contract.md, "What the client guarantees").

An event's writes happen in a fixed order, each only after the one before it succeeded:
the backend's write (Kafka, or the Celery fallback), with dual write the other backend's, then
its Redis channel (`redis`, `both`), then its in-process handler (`direct`). `publish` returns
once every write is confirmed (Kafka: the broker's delivery report); the first write that fails
raises `PublishError` naming what was delivered and what was not, and nothing after it is tried,
so `publish(..., only=error.undelivered)` completes the event without a second copy anywhere.
The payload is encoded once, before any write, so every transport gets the same JSON or none does.
Delivery is at least once: a write that timed out may have been written (`PublishError.maybe_written`).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka_platform_client.settings import ClientSettings, Route, key_fields

log = logging.getLogger("kafka_platform_client")

Payload = Mapping[str, Any]
DirectHandler = Callable[[dict[str, Any]], object]
# Every transport an event can be written to.
TRANSPORTS = ("kafka", "celery", "redis", "direct")
EVENT_TYPE_HEADER = "event_type"


class UnknownEvent(LookupError):
    """The event is not in this service's MESSAGING_ROUTING."""


class MissingKeyField(ValueError):
    """The payload lacks a field its route's key template names (never a null key)."""


class BadKeyField(TypeError):
    """A key field is neither a string nor an integer: other languages would format it differently."""


class PayloadNotJSON(TypeError):
    """The payload holds a value JSON cannot carry (e.g. a datetime): nothing was written."""


class PublishError(RuntimeError):
    """A write failed: `delivered` went out, `undelivered` did not (the failed one first)."""

    def __init__(
        self, event_type: str, delivered: tuple[str, ...], undelivered: tuple[str, ...], cause: BaseException
    ) -> None:
        self.event_type = event_type
        self.delivered = delivered
        self.undelivered = undelivered
        self.cause = cause
        # A write that timed out may have reached the broker: completing it may write it twice.
        self.maybe_written: bool = getattr(cause, "maybe_written", isinstance(cause, TimeoutError))
        done = ", ".join(delivered) or "nothing"
        maybe = f" ({undelivered[0]} may have been written)" if self.maybe_written else ""
        super().__init__(
            f"{event_type}: {undelivered[0]} failed ({cause}); delivered: {done}; "
            f"not delivered: {', '.join(undelivered)}{maybe}"
        )


@dataclass(frozen=True)
class Published:
    """What one `publish` did: the transports written, in order; the Kafka record's place."""

    event_type: str
    delivered: tuple[str, ...]
    partition: int | None = None
    offset: int | None = None


@dataclass(frozen=True)
class KafkaRecord:
    topic: str
    key: str | None
    value: bytes
    event_type: str


@dataclass(frozen=True)
class CeleryTask:
    name: str
    queue: str
    payload: dict[str, Any]


def encode(event_type: str, payload: Payload) -> bytes:
    """The body on Kafka and Redis: {"event_type": ..., "payload": {...}} as compact, sorted JSON."""
    try:
        return json.dumps(
            {"event_type": event_type, "payload": dict(payload)}, sort_keys=True, separators=(",", ":")
        ).encode()
    except (TypeError, ValueError) as error:
        raise PayloadNotJSON(
            f"event '{event_type}': its payload is not JSON ({error}); convert it first, e.g. a "
            "datetime to an ISO 8601 string"
        ) from None


def default_task_name(event_type: str) -> str:
    """The Celery task an event goes to unless the team names another: the event's own name."""
    return event_type


class Transports(ABC):
    """Where writes go. `RealTransports` talks to Kafka, Celery and Redis; the test double
    (`kafka_platform_client.testing`) records in memory."""

    @abstractmethod
    def kafka(self, record: KafkaRecord) -> tuple[int, int]:
        """Write and wait for the delivery report: (partition, offset), or raise."""

    @abstractmethod
    def celery(self, task: CeleryTask) -> None: ...

    @abstractmethod
    def redis(self, channel: str, body: bytes) -> None: ...

    @abstractmethod
    def close(self) -> None:
        """Flush what is buffered; raise if something could not be delivered."""


class Publisher:
    """Publishes a service's events as its env says. Safe to share between threads; after a
    fork (e.g. Celery's prefork pool) each process builds its own connections on first use."""

    def __init__(
        self,
        settings: ClientSettings,
        *,
        celery_tasks: Mapping[str, str] | None = None,
        transports: Callable[[ClientSettings], Transports] | None = None,
        delivery_timeout: float = 30.0,
    ) -> None:
        self.settings = settings
        self.celery_tasks = dict(celery_tasks or {})
        self.delivery_timeout = delivery_timeout
        self._make_transports = transports or (lambda s: RealTransports(s, delivery_timeout=delivery_timeout))
        self._direct: dict[str, DirectHandler] = {}
        self._lock = threading.Lock()
        self._transports: Transports | None = None
        self._pid = os.getpid()
        self._closed = False
        _OPEN.add(self)

    def register_direct(self, event_type: str, handler: DirectHandler) -> None:
        """The in-process handler of an event routed `direct` (called synchronously, never queued)."""
        self.route(event_type)
        self._direct[event_type] = handler

    def route(self, event_type: str) -> Route:
        try:
            return self.settings.messaging_routing[event_type]
        except KeyError:
            known = ", ".join(sorted(self.settings.messaging_routing)) or "none"
            raise UnknownEvent(
                f"event '{event_type}' is not in this service's MESSAGING_ROUTING (it may publish: {known})"
            ) from None

    def writes(self, event_type: str) -> tuple[str, ...]:
        """The transports `publish` writes this event to, in order."""
        route = self.route(event_type)
        settings = self.settings
        planned: list[str] = []
        if settings.messaging_backend != "disabled":
            if route.on_topic:
                planned.append(settings.messaging_backend)
                if settings.messaging_dual_write:
                    planned.append("celery" if settings.messaging_backend == "kafka" else "kafka")
            if route.on_channel:
                planned.append("redis")
        if route.transport == "direct":
            planned.append("direct")
        return tuple(planned)

    def key(self, event_type: str, payload: Payload) -> str | None:
        """The record key: the route's template filled from the payload."""
        template = self.route(event_type).key
        if template is None:
            return None
        names = key_fields(template)
        missing = [name for name in names if payload.get(name) is None]
        if missing:
            raise MissingKeyField(
                f"event '{event_type}': its key '{template}' needs payload field(s) {', '.join(missing)}"
            )
        # Only what every language formats alike (docs/env-contract.md): True, 1.0 or a dict
        # would come out differently in Java or Go and land on another partition.
        bad = [
            f"{name} ({type(payload[name]).__name__})"
            for name in names
            if isinstance(payload[name], bool) or not isinstance(payload[name], str | int)
        ]
        if bad:
            raise BadKeyField(
                f"event '{event_type}': its key '{template}' takes only string or integer fields, "
                f"not {', '.join(bad)}"
            )
        # A str or int subclass (an enum) formats as its plain value, as it does in JSON.
        return template.format_map(
            {
                name: str.__str__(value) if isinstance(value, str) else int.__repr__(value)
                for name in names
                for value in (payload[name],)
            }
        )

    def publish(self, event_type: str, payload: Payload, *, only: Collection[str] | None = None) -> Published:
        """Write the event everywhere its route and the backend say (or only to `only`, e.g. a
        PublishError's `undelivered`); return when all are confirmed."""
        if self._closed:
            raise RuntimeError("this publisher is closed")
        route = self.route(event_type)
        key = self.key(event_type, payload) if route.on_topic else None
        # Encoded once, in every mode (`disabled` too), before any write: each transport gets the
        # payload as JSON gives it back. A direct call is no messaging: its handler gets the payload.
        encoded = encode(event_type, payload) if route.transport != "direct" else b""
        body: dict[str, Any] = json.loads(encoded)["payload"] if encoded else dict(payload)
        planned = self.writes(event_type)
        if only is not None:
            planned = tuple(transport for transport in planned if transport in only)
        if not planned:
            # Never the payload: it may hold personal data.
            log.info(
                "MESSAGING_BACKEND=%s: %s not sent (key %s)", self.settings.messaging_backend, event_type, key
            )
            return Published(event_type, ())
        delivered: list[str] = []
        partition = offset = None
        for position, transport in enumerate(planned):
            try:
                if transport == "kafka":
                    assert route.topic is not None
                    record = KafkaRecord(route.topic, key, encoded, event_type)
                    partition, offset = self.transports().kafka(record)
                elif transport == "celery":
                    assert route.topic is not None
                    name = self.celery_tasks.get(event_type, default_task_name(event_type))
                    self.transports().celery(CeleryTask(name, route.topic, body))
                elif transport == "redis":
                    assert route.channel is not None
                    self.transports().redis(route.channel, encoded)
                else:
                    self._call_direct(event_type, body)
            except Exception as error:
                raise PublishError(event_type, tuple(delivered), planned[position:], error) from error
            delivered.append(transport)
        return Published(event_type, tuple(delivered), partition, offset)

    def _call_direct(self, event_type: str, payload: dict[str, Any]) -> None:
        self._direct_handler(event_type)(payload)

    def _direct_handler(self, event_type: str) -> DirectHandler:
        handler = self._direct.get(event_type)
        if handler is None:
            raise LookupError(
                f"event '{event_type}' is routed direct; register its handler with register_direct"
            )
        return handler

    def transports(self) -> Transports:
        """This process's connections: built on first use, rebuilt in a forked child."""
        with self._lock:
            if self._pid != os.getpid():
                self._forked()
            if self._transports is None:
                self._transports = self._make_transports(self.settings)
            return self._transports

    def _forked(self) -> None:
        # The parent's librdkafka handle has no threads in the child: destroying it could hang,
        # so the child keeps it unreachable-but-alive and builds its own.
        if self._transports is not None:
            _INHERITED.append(self._transports)
        self._transports = None
        self._pid = os.getpid()

    def close(self) -> None:
        """Flush and close this process's connections; raises if something stayed undelivered."""
        with self._lock:
            self._closed = True
            transports, self._transports = self._transports, None
            owned = self._pid == os.getpid()
        _OPEN.discard(self)
        if transports is not None and owned:
            transports.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class RealTransports(Transports):
    """confluent-kafka, Celery's `send_task` and redis-py, each built on first use."""

    def __init__(self, settings: ClientSettings, *, delivery_timeout: float) -> None:
        self.settings = settings
        self.delivery_timeout = delivery_timeout
        self._producer: Any = None
        self._celery: Any = None
        self._redis: Any = None
        self._lock = threading.Lock()
        self._celery_lock = threading.Lock()

    def producer(self) -> Any:
        with self._lock:
            if self._producer is None:
                built: list[Any] = []

                def on_error(error: Any) -> None:
                    if error.fatal():
                        log.error(
                            "the Kafka producer failed for good; the next write builds another: %s", error
                        )
                        self._retire(built[0])

                built.append(
                    new_producer(
                        producer_config(self.settings, self.delivery_timeout) | {"error_cb": on_error}
                    )
                )
                self._producer = built[0]
            return self._producer

    def _retire(self, producer: Any) -> None:
        """Stop using a producer after a fatal error (a fatal idempotent producer refuses every
        record from then on): the next write builds a new one; threads still waiting on the old
        one get their delivery reports from it."""
        with self._lock:
            if self._producer is producer:
                self._producer = None

    def kafka(self, record: KafkaRecord) -> tuple[int, int]:
        from confluent_kafka import KafkaError, KafkaException

        producer = self.producer()
        done = threading.Event()
        outcome: dict[str, Any] = {}

        def delivered(error: Any, message: Any) -> None:
            outcome["error"], outcome["message"] = error, message
            done.set()

        try:
            producer.produce(
                record.topic,
                key=record.key.encode() if record.key is not None else None,
                value=record.value,
                headers=[(EVENT_TYPE_HEADER, record.event_type.encode())],
                on_delivery=delivered,
            )
        except KafkaException as error:
            if error.args[0].fatal() or error.args[0].code() == KafkaError._FATAL:
                self._retire(producer)
            raise
        # librdkafka fails the record itself after message.timeout.ms; the margin covers the
        # report's way back.
        deadline = time.monotonic() + self.delivery_timeout + 10
        while not done.is_set() and time.monotonic() < deadline:
            producer.poll(0.05)
        if not done.is_set():
            raise TimeoutError(
                f"no delivery report for {record.topic} within {self.delivery_timeout + 10:.0f} s"
            )
        failure = outcome["error"]
        if failure is not None:
            if failure.fatal() or failure.code() == KafkaError._FATAL:
                self._retire(producer)
            raise KafkaDeliveryError(str(failure), maybe_written=failure.code() == KafkaError._MSG_TIMED_OUT)
        message = outcome["message"]
        return message.partition(), message.offset()

    def celery(self, task: CeleryTask) -> None:
        with self._lock:
            if self._celery is None:
                self._celery = celery_app(self.settings)
        # Celery and kombu are not thread-safe (threads sharing a producer's channel): one send
        # at a time.
        with self._celery_lock:
            self._celery.send_task(task.name, args=(task.payload,), queue=task.queue, retry=False)

    def redis(self, channel: str, body: bytes) -> None:
        with self._lock:
            if self._redis is None:
                import redis

                assert self.settings.redis_url is not None  # the settings require it for a channel
                self._redis = redis.Redis.from_url(
                    self.settings.redis_url.get_secret_value(), socket_connect_timeout=5, socket_timeout=5
                )
        self._redis.publish(channel, body)

    def close(self) -> None:
        problems = []
        # Dropping each handle (not only flushing it) ends its connections now, even while a
        # PublishError's traceback still refers to these transports.
        producer, self._producer = self._producer, None
        if producer is not None:
            left = producer.flush(self.delivery_timeout)
            if left:
                problems.append(f"{left} Kafka record(s) undelivered after {self.delivery_timeout:.0f} s")
        celery, self._celery = self._celery, None
        if celery is not None:
            celery.close()
        client, self._redis = self._redis, None
        if client is not None:
            client.close()
        if problems:
            raise RuntimeError("; ".join(problems))


class KafkaDeliveryError(RuntimeError):
    """The delivery report said the record failed; after a timeout it may have been written."""

    def __init__(self, message: str, *, maybe_written: bool = False) -> None:
        super().__init__(message)
        self.maybe_written = maybe_written


def new_producer(config: dict[str, Any]) -> Any:
    """A confluent-kafka Producer (built in one place, so a test can see each one built)."""
    from confluent_kafka import Producer

    return Producer(config)


def producer_config(settings: ClientSettings, delivery_timeout: float = 30.0) -> dict[str, Any]:
    """librdkafka's producer settings from the contract: keys partitioned as the Java clients do,
    idempotent, acknowledged by all in-sync replicas."""
    return {
        **settings.kafka_connection(),
        "partitioner": settings.kafka_partitioner,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": int(delivery_timeout * 1000),
        "log_level": 4,
    }


def celery_app(settings: ClientSettings) -> Any:
    """A Celery app that only sends: broker from CELERY_BROKER_URL, JSON, no publish retries
    (a failed send is the caller's PublishError, not a silent wait)."""
    from celery import Celery

    if settings.celery_broker_url is None:
        raise RuntimeError("CELERY_BROKER_URL is not set")
    url = settings.celery_broker_url.get_secret_value()
    app = Celery("kafka-platform-client", broker=url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        broker_connection_timeout=5,
        broker_connection_retry=False,
    )
    if url.startswith(("redis", "rediss")):
        app.conf.broker_transport_options = {"socket_connect_timeout": 5, "socket_timeout": 5}
    else:  # AMQP: the broker confirms each message before send_task returns
        app.conf.broker_transport_options = {"confirm_publish": True}
    return app


# Publishers of this process, closed (flushed) at exit; and handles a fork left behind.
_OPEN: weakref.WeakSet[Publisher] = weakref.WeakSet()
_INHERITED: list[Transports] = []


def _after_fork_in_child() -> None:
    _DEFAULT.lock = threading.Lock()
    for publisher in list(_OPEN):
        publisher._lock = threading.Lock()  # a lock held by another thread at fork stays held
        publisher._forked()


def _close_open() -> None:
    for publisher in list(_OPEN):
        try:
            publisher.close()
        except Exception:
            log.exception("closing the publisher at exit")


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_open)


@dataclass
class _Default:
    publisher: Publisher | None = None
    direct: dict[str, DirectHandler] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_DEFAULT = _Default()


def configure(
    settings: ClientSettings | None = None, *, celery_tasks: Mapping[str, str] | None = None
) -> Publisher:
    """Build the process's publisher from its env (call it at start-up: a broken env fails there,
    not at the first publish). `publish_event` calls it if nobody did. A publisher it replaces
    stays open for threads that may still hold it (flushed at exit)."""
    publisher = _new_publisher(settings, celery_tasks)
    use(publisher)
    return publisher


def _new_publisher(settings: ClientSettings | None, celery_tasks: Mapping[str, str] | None) -> Publisher:
    from kafka_platform_client import settings as contract

    return Publisher(settings or contract.load_settings(), celery_tasks=celery_tasks)


def use(publisher: Publisher | None, *, close_previous: bool = False) -> Publisher | None:
    """Make `publisher` the one `publish_event` uses (None: build one from the env at the next
    publish); returns the one it replaced, or None if `close_previous` closed it (only safe when
    no other thread may still publish with it)."""
    with _DEFAULT.lock:
        previous, _DEFAULT.publisher = _DEFAULT.publisher, publisher
        if publisher is not None:
            for event_type, handler in _DEFAULT.direct.items():
                publisher.register_direct(event_type, handler)
    if previous is None or previous is publisher or not close_previous:
        return previous
    previous.close()
    return None


def default_publisher() -> Publisher:
    """The publisher `publish_event` uses: built from the env once, under the lock, so threads
    racing to the first publish share one."""
    with _DEFAULT.lock:
        if _DEFAULT.publisher is None:
            publisher = _new_publisher(None, None)
            for event_type, handler in _DEFAULT.direct.items():
                publisher.register_direct(event_type, handler)
            _DEFAULT.publisher = publisher
        return _DEFAULT.publisher


def register_direct_handler(event_type: str, handler: DirectHandler) -> None:
    """The in-process handler of a `direct` event, for `publish_event`."""
    with _DEFAULT.lock:
        _DEFAULT.direct[event_type] = handler
        publisher = _DEFAULT.publisher
    if publisher is not None:
        publisher.register_direct(event_type, handler)


def publish_event(event_type: str, payload: Payload) -> Published:
    """Publish one event as this service's env says; raises PublishError if a write failed."""
    return default_publisher().publish(event_type, payload)


async def publish_event_async(event_type: str, payload: Payload) -> Published:
    """`publish_event` for asyncio code: the blocking wait for delivery runs in a worker thread."""
    import asyncio

    return await asyncio.to_thread(publish_event, event_type, payload)
