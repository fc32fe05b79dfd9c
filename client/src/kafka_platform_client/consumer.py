"""A consumer from the contract (KAFKA_CONSUMER_GROUP, KAFKA_CONSUME_TOPICS, SASL), at least
once: a record's offset is committed only after its handler returned, so a crash or restart
re-delivers what was not handled and loses nothing."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from kafka_platform_client.publisher import EVENT_TYPE_HEADER
from kafka_platform_client.settings import ClientSettings

log = logging.getLogger("kafka_platform_client")


@dataclass(frozen=True)
class Event:
    """One event as a handler receives it, from Kafka or from the Celery fallback."""

    event_type: str
    payload: dict[str, Any]
    source: str  # "kafka" or "celery"
    topic: str | None = None
    key: str | None = None
    partition: int | None = None
    offset: int | None = None


Handler = Callable[[Event], object]
REFUSED = frozenset({KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED})
# A commit that fails with these leaves the stored offsets for the next commit (the coordinator
# moves, the group rebalances), or the partitions went to another member, which reads their
# uncommitted records again: at least once either way, so the consumer carries on.
COMMIT_LATER = frozenset(
    {
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError._TIMED_OUT,
        KafkaError._WAIT_COORD,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError.STALE_MEMBER_EPOCH,
        KafkaError.FENCED_MEMBER_EPOCH,
        KafkaError._ASSIGNMENT_LOST,
        KafkaError._STATE,
        KafkaError._UNKNOWN_PARTITION,
    }
)


def decode(message: Any) -> Event:
    """An Event from a record `publish_event` wrote; ValueError naming the record otherwise."""
    where = f"{message.topic()}[{message.partition()}]@{message.offset()}"
    try:
        body = json.loads(message.value())
        event_type, payload = body["event_type"], body["payload"]
    except (TypeError, ValueError, KeyError) as error:
        headers = dict(message.headers() or [])
        kind = headers.get(EVENT_TYPE_HEADER, b"?").decode(errors="replace")
        raise ValueError(
            f"record {where} (event_type {kind}) is not a kafka-platform event: {error}"
        ) from None
    key = message.key()
    return Event(
        event_type=event_type,
        payload=payload,
        source="kafka",
        topic=message.topic(),
        key=key.decode() if key is not None else None,
        partition=message.partition(),
        offset=message.offset(),
    )


def group_id(settings: ClientSettings, instance: str | None = None) -> str:
    """KAFKA_CONSUMER_GROUP, or KAFKA_CONSUMER_GROUP_PREFIX + this instance's stable name."""
    if settings.kafka_consumer_group is not None:
        return settings.kafka_consumer_group
    if settings.kafka_consumer_group_prefix is not None:
        if not instance:
            raise ValueError(
                "KAFKA_CONSUMER_GROUP_PREFIX is set: give this instance's name (e.g. its pod name)"
            )
        return settings.kafka_consumer_group_prefix + instance
    raise ValueError(
        "neither KAFKA_CONSUMER_GROUP nor KAFKA_CONSUMER_GROUP_PREFIX is set: this service consumes nothing"
    )


def consumer_config(settings: ClientSettings, instance: str | None = None) -> dict[str, Any]:
    return {
        **settings.kafka_connection(),
        "group.id": group_id(settings, instance),
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "log_level": 4,
    }


class EventConsumer:
    """Reads the service's topics in batches: each record is handed to `handler` in order, its
    offset stored once the handler returned, and the batch's stored offsets committed before the
    next batch (and before a rebalance takes the partitions away). A handler that raises (or a
    record that is not an event) commits the records handled before it, rewinds the consumer to
    the failed record and propagates: the next `poll_batch` hands it over again, so nothing is
    skipped whether the service stops or carries on."""

    def __init__(
        self,
        settings: ClientSettings,
        handler: Handler,
        *,
        topics: list[str] | None = None,
        instance: str | None = None,
        batch_size: int = 100,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        """`config`: further librdkafka settings (e.g. `session.timeout.ms`, or
        `auto.offset.reset`, `earliest` unless given); the contract's win."""
        self.topics = topics or list(settings.kafka_consume_topics)
        if not self.topics:
            raise ValueError("KAFKA_CONSUME_TOPICS is empty: this service consumes nothing")
        self.handler = handler
        self.batch_size = batch_size
        self._broken: Exception | None = None
        self._consumer = Consumer(
            {"auto.offset.reset": "earliest", **(config or {}), **consumer_config(settings, instance)}
        )
        self._consumer.subscribe(self.topics, on_revoke=self._on_revoke, on_lost=self._on_lost)

    def poll_batch(self, timeout: float = 1.0) -> int:
        """Handle up to one batch; returns how many records were handled."""
        if self._broken is not None:
            raise RuntimeError(f"this consumer could not rewind after a failure: {self._broken}")
        messages = self._consumer.consume(self.batch_size, timeout)
        handled = 0
        done = 0  # messages of the batch taken care of: handled, or an error passed over
        try:
            for message in messages:
                error = message.error()
                if error is not None:
                    # librdkafka retries the transient ones itself; these it never gets past.
                    if error.fatal() or error.code() in REFUSED:
                        raise KafkaException(error)
                    log.warning("consumer: %s", error)
                else:
                    self.handler(decode(message))
                    self._consumer.store_offsets(message=message)
                    handled += 1
                done += 1
        except BaseException:
            self._rewind(messages[done:])
            raise
        finally:
            if handled:
                self._commit()
        return handled

    def run(self, stop: threading.Event | None = None) -> None:
        """Handle batches until `stop` is set (or a handler raises)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            self.poll_batch()

    def _rewind(self, unhandled: list[Any]) -> None:
        """Seek each partition of `unhandled` back to its first record there: consume() has
        moved past the whole batch, and the next batch must start with the failed record."""
        first: dict[tuple[str, int], int] = {}
        for message in unhandled:
            if message.error() is None:
                first.setdefault((message.topic(), message.partition()), message.offset())
        for (topic, partition), offset in first.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as error:  # e.g. the partition was taken away meanwhile
                self._broken = error
                log.error("consumer: cannot rewind %s[%d] to %d: %s", topic, partition, offset, error)

    def _commit(self) -> None:
        """Commit the stored offsets; an error librdkafka or the group gets past (see
        COMMIT_LATER) is logged and the offsets go with the next commit or come again."""
        try:
            committed = self._consumer.commit(asynchronous=False)
        except KafkaException as raised:
            error = raised.args[0]
            if error.code() == KafkaError._NO_OFFSET:
                return
            if error.code() not in COMMIT_LATER or error.fatal():
                raise
            log.warning("consumer: commit not done (%s); the handled records may come again", error)
            return
        for partition in committed or ():
            error = partition.error
            if error is None:
                continue
            if error.code() not in COMMIT_LATER or error.fatal():
                where = f"{partition.topic}[{partition.partition}]"
                raise KafkaException(KafkaError(error.code(), f"commit of {where}: {error.str()}"))
            log.warning(
                "consumer: commit of %s[%d] not done (%s); its handled records may come again",
                partition.topic,
                partition.partition,
                error,
            )

    def _on_revoke(self, consumer: Any, partitions: Any) -> None:
        self._commit()

    def _on_lost(self, consumer: Any, partitions: Any) -> None:
        # Another member may own them already: no commit; what was handled and not committed
        # comes again there (at least once).
        log.warning("consumer: lost %d partitions to a rebalance without a commit", len(partitions))

    def close(self) -> None:
        """Commit what was handled and leave the group."""
        self._commit()
        self._consumer.close()

    def __enter__(self) -> EventConsumer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
