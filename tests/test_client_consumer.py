"""What `EventConsumer` does with commit errors a real broker cannot be made to return on cue
(a coordinator moving, a rebalance under way, one partition's commit refused), and with a seek
back to a failed record that fails: librdkafka's consumer is stood in for by `CommitAnswers`,
which hands out real `Message`s, answers each commit as told and refuses every seek. The rest
of the consumer (a handler failing mid-batch, a lost assignment, a commit after it) runs on a
real broker in tests/integration/test_client_publishing.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition
from kafka_platform_client import Event, EventConsumer
from kafka_platform_client.testing import settings

TOPIC = "shop.orders"


@dataclass(frozen=True)
class PartitionCommit:
    """One partition's part of a synchronous commit's answer, as librdkafka gives it."""

    topic: str
    partition: int
    error: KafkaError | None


class CommitAnswers:
    """The consumer `EventConsumer` drives, answering commit i with answers[i]: a KafkaError to
    raise, or per-partition results (none once answers run out); a seek finds no partition."""

    def __init__(self, records: int, answers: list[KafkaError | list[PartitionCommit]]) -> None:
        self.pending = [
            Message(
                topic=TOPIC,
                partition=0,
                offset=offset,
                value=json.dumps({"event_type": "order.placed", "payload": {"id": offset}}).encode(),
            )
            for offset in range(records)
        ]
        self.answers = answers
        self.stored: list[int] = []
        self.commits = 0

    def consume(self, count: int, timeout: float) -> list[Message]:
        batch, self.pending = self.pending[:count], self.pending[count:]
        return batch

    def store_offsets(self, message: Message) -> None:
        self.stored.append(int(message.offset() or 0))

    def commit(self, asynchronous: bool) -> list[PartitionCommit]:
        answer = self.answers[self.commits] if self.commits < len(self.answers) else []
        self.commits += 1
        if isinstance(answer, KafkaError):
            raise KafkaException(answer)
        return answer

    def seek(self, partition: TopicPartition) -> None:
        raise KafkaException(KafkaError(KafkaError._STATE, "partition not assigned"))

    def close(self) -> None:
        pass


@pytest.fixture
def handled() -> list[Event]:
    return []


@contextmanager
def consumer_with(answers: CommitAnswers, handled: list[Event]) -> Iterator[EventConsumer]:
    """An EventConsumer on `answers` (its own librdkafka consumer, never polled, closed after)."""
    consumer = EventConsumer(
        settings({}, KAFKA_CONSUMER_GROUP="shop.billing", KAFKA_CONSUME_TOPICS=TOPIC),
        handled.append,
        batch_size=2,
    )
    real: Any = consumer._consumer
    consumer._consumer = answers
    try:
        yield consumer
    finally:
        real.close()


BUSY = [KafkaError.REBALANCE_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR]


@pytest.mark.parametrize("code", BUSY, ids=lambda code: KafkaError(code).name())
@pytest.mark.parametrize("where", ["the whole commit", "one partition"])
def test_a_commit_the_group_cannot_take_now_leaves_the_consumer_running(
    code: int, where: str, handled: list[Event]
) -> None:
    refused: KafkaError | list[PartitionCommit] = KafkaError(code)
    if where == "one partition":
        refused = [PartitionCommit(TOPIC, 0, KafkaError(code))]
    answers = CommitAnswers(4, [refused])
    with consumer_with(answers, handled) as consumer:
        assert consumer.poll_batch() == 2, "the failed commit does not stop the consumer"
        assert consumer.poll_batch() == 2
    assert [event.payload["id"] for event in handled] == [0, 1, 2, 3]
    assert answers.commits == 2, "the next batch's commit carries the stored offsets on"


@pytest.mark.parametrize(
    "code",
    [KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.OFFSET_METADATA_TOO_LARGE],
    ids=lambda code: KafkaError(code).name(),
)
def test_a_partition_whose_commit_is_refused_for_good_stops_the_consumer_naming_it(
    code: int, handled: list[Event]
) -> None:
    answers = CommitAnswers(
        4, [[PartitionCommit(TOPIC, 0, None), PartitionCommit(TOPIC, 1, KafkaError(code))]]
    )
    with consumer_with(answers, handled) as consumer, pytest.raises(KafkaException) as raised:
        consumer.poll_batch()
    assert raised.value.args[0].code() == code
    assert f"{TOPIC}[1]" in str(raised.value)
    assert len(handled) == 2, "the batch was handled; its commit failed"


def test_a_consumer_that_cannot_rewind_to_a_failed_record_refuses_to_go_on(handled: list[Event]) -> None:
    """Polling on past a record it could not seek back to would skip it: every later call raises."""
    answers = CommitAnswers(4, [])
    with consumer_with(answers, handled) as consumer:
        consumer.handler = failing = FailsOn(1)
        with pytest.raises(RuntimeError, match="handler failed on 1"):
            consumer.poll_batch()
        with pytest.raises(RuntimeError, match="could not rewind"):
            consumer.poll_batch()
    assert failing.seen == [0, 1]
    assert (answers.stored, answers.commits) == ([0], 1), "record 0 handled and committed, 1 not"


@dataclass
class FailsOn:
    """A handler that raises on the record with this id."""

    failing: int
    seen: list[int] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.seen.append(event.payload["id"])
        if event.payload["id"] == self.failing:
            raise RuntimeError(f"handler failed on {self.failing}")
