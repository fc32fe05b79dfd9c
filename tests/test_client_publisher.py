"""What `publish_event` writes where, and what a failed write leaves behind, through the client's
own test double (its in-memory transports; the real ones are proven in
tests/integration/test_client_publishing.py). The table of writes is read from
docs/env-contract.md, so the page and the client cannot disagree."""

from __future__ import annotations

import asyncio
import datetime
import enum
import logging
import re
import socket
import threading
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from kafka_platform_client import (
    BadKeyField,
    ContractError,
    MissingKeyField,
    PayloadNotJSON,
    PublishError,
    UnknownEvent,
    configure,
    publish_event,
    publish_event_async,
    register_direct_handler,
)
from kafka_platform_client import publisher as publisher_module
from kafka_platform_client import settings as settings_module
from kafka_platform_client.publisher import Publisher, producer_config
from kafka_platform_client.testing import RecordingPublisher, Sent, recording, settings

from tests.project_files import REPO

ROUTING = {
    "SharesPurchased": {
        "transport": "kafka",
        "topic": "vibestream.financial",
        "key": "contract:{contract_id}",
    },
    "ListenSessionCompleted": {
        "transport": "both",
        "topic": "vibestream.listen-sessions",
        "channel": "vibestream:listen:realtime",
    },
    "UserProfileUpdated": {"transport": "redis", "channel": "vibestream:profiles"},
    "Payment": {"transport": "direct"},
}
EVENT_OF_ROUTE = {route["transport"]: event for event, route in ROUTING.items()}
PAYLOAD = {"contract_id": "c-7", "id": "e-1"}


def writes_table() -> dict[tuple[str, bool], dict[str, tuple[str, ...]]]:
    """docs/env-contract.md's table: (backend, dual write) -> route transport -> writes."""
    page = (REPO / "docs" / "env-contract.md").read_text()
    table = page.split("Which writes an event gets, in this order:\n", 1)[1].lstrip().split("\n\n", 1)[0]
    rows = [line.strip("|").split("|") for line in table.splitlines()[2:]]
    parsed = {}
    for first, *cells in rows:
        backend = re.findall(r"`(\w+)`", first)[0]
        writes = {}
        for transport, cell in zip(("kafka", "both", "redis", "direct"), cells, strict=True):
            names = [word.strip().lower() for word in cell.split(",")]
            writes[transport] = tuple(
                "direct" if name == "the in-process handler" else name
                for name in names
                if not name.startswith("nothing")
            )
        parsed[(backend, "dual write" in first)] = writes
    return parsed


def recorder(backend: str = "kafka", dual_write: bool = False) -> RecordingPublisher:
    publisher = RecordingPublisher(settings(ROUTING, backend=backend, dual_write=dual_write))
    publisher.register_direct("Payment", lambda payload: None)
    return publisher


def written(publisher: RecordingPublisher) -> tuple[str, ...]:
    return tuple(transport for transport, sent in publisher.sent.items() for _ in sent)


@pytest.mark.parametrize(("backend", "dual_write"), sorted(writes_table()))
def test_each_event_gets_exactly_the_writes_the_contract_page_lists(backend: str, dual_write: bool) -> None:
    for transport, expected in writes_table()[(backend, dual_write)].items():
        publisher = recorder(backend, dual_write)
        published = publisher.publish(EVENT_OF_ROUTE[transport], PAYLOAD)
        assert published.delivered == expected, (backend, dual_write, transport)
        assert sorted(written(publisher)) == sorted(expected)


def test_kafka_gets_the_filled_key_and_celery_the_same_payload_on_the_topics_queue() -> None:
    publisher = recorder("kafka", dual_write=True)
    publisher.publish("SharesPurchased", PAYLOAD)
    assert publisher.sent["kafka"] == [
        Sent("SharesPurchased", PAYLOAD, "vibestream.financial", "contract:c-7")
    ]
    assert publisher.sent["celery"] == [Sent("SharesPurchased", PAYLOAD, "vibestream.financial")]


def test_a_team_names_the_celery_task_of_an_event() -> None:
    publisher = RecordingPublisher(
        settings(ROUTING, backend="celery"), celery_tasks={"SharesPurchased": "shares.tasks.purchased"}
    )
    publisher.publish("SharesPurchased", PAYLOAD)
    assert publisher.events("celery") == ["shares.tasks.purchased"]


def test_a_missing_key_field_is_an_error_naming_event_and_field_and_nothing_is_written() -> None:
    publisher = recorder("kafka", dual_write=True)
    for payload in ({"id": "e-1"}, {"id": "e-1", "contract_id": None}):
        with pytest.raises(
            MissingKeyField, match=r"event 'SharesPurchased'.*'contract:\{contract_id\}'.*contract_id"
        ):
            publisher.publish("SharesPurchased", payload)
    assert written(publisher) == ()


def test_an_event_outside_the_routing_is_refused() -> None:
    with pytest.raises(UnknownEvent, match="'SharesSold' is not in this service's MESSAGING_ROUTING"):
        recorder().publish("SharesSold", PAYLOAD)


def test_a_failed_first_write_sends_nothing_else() -> None:
    publisher = recorder("kafka", dual_write=True)
    publisher.fail("kafka")
    with pytest.raises(PublishError) as raised:
        publisher.publish("ListenSessionCompleted", PAYLOAD)
    assert (raised.value.delivered, raised.value.undelivered) == ((), ("kafka", "celery", "redis"))
    assert written(publisher) == ()


@pytest.mark.parametrize(
    ("backend", "failing", "delivered", "undelivered"),
    [
        ("kafka", "celery", ("kafka",), ("celery", "redis")),  # dual write: the second backend fails
        ("celery", "kafka", ("celery",), ("kafka", "redis")),  # the same after a flip to Celery
        ("kafka", "redis", ("kafka", "celery"), ("redis",)),  # `both`: the channel fails
    ],
)
def test_a_failed_later_write_names_what_went_out_and_a_retry_completes_it_once(
    backend: str, failing: str, delivered: tuple[str, ...], undelivered: tuple[str, ...]
) -> None:
    publisher = recorder(backend, dual_write=True)
    publisher.fail(failing)
    with pytest.raises(PublishError, match=f"{failing} failed") as raised:
        publisher.publish("ListenSessionCompleted", PAYLOAD)
    assert (raised.value.delivered, raised.value.undelivered) == (delivered, undelivered)
    assert sorted(written(publisher)) == sorted(delivered)

    del publisher.memory.failing[failing]
    publisher.publish("ListenSessionCompleted", PAYLOAD, only=raised.value.undelivered)
    assert sorted(written(publisher)) == sorted(delivered + undelivered), "each write exactly once"


def test_disabled_logs_and_sends_nothing_but_a_direct_call_still_happens(
    caplog: pytest.LogCaptureFixture,
) -> None:
    publisher = RecordingPublisher(settings(ROUTING, backend="disabled"))
    paid: list[dict[str, object]] = []
    publisher.register_direct("Payment", paid.append)
    with caplog.at_level(logging.INFO, logger="kafka_platform_client"):
        for event in ROUTING:
            publisher.publish(event, PAYLOAD)
    assert written(publisher) == ("direct",) and paid == [PAYLOAD]
    assert "MESSAGING_BACKEND=disabled: SharesPurchased not sent (key contract:c-7)" in caplog.text
    assert PAYLOAD["id"] not in caplog.text, "a payload may hold personal data: never logged"


def test_a_direct_event_without_its_handler_is_a_publish_error() -> None:
    publisher = publisher_module.Publisher(
        settings(ROUTING), transports=lambda _: pytest.fail("no transport")
    )
    with pytest.raises(PublishError, match="register its handler"):
        publisher.publish("Payment", PAYLOAD)


def test_the_double_makes_publish_event_record_for_a_teams_unit_test() -> None:
    register_direct_handler("Payment", lambda payload: None)
    with recording(settings(ROUTING, backend="celery")) as published:
        publish_event("SharesPurchased", PAYLOAD)
        publish_event("Payment", PAYLOAD)
        # Not asyncio.run: it would leave no current event loop for the Pulumi mock tests.
        loop = asyncio.new_event_loop()
        loop.run_until_complete(publish_event_async("UserProfileUpdated", {"user_id": "u-1"}))
        loop.close()
    assert published.events("celery") == ["SharesPurchased"]
    assert published.events("direct") == ["Payment"]
    assert published.sent["redis"] == [Sent("UserProfileUpdated", {"user_id": "u-1"}, "vibestream:profiles")]
    assert published.memory.closed, "leaving the block closes (flushes) it"


def a_fresh_process_with_a_direct_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process env routing `Payment` direct, and no default publisher built yet."""
    env = {
        "MESSAGING_BACKEND": "disabled",
        "MESSAGING_DUAL_WRITE": "false",
        "MESSAGING_ROUTING": '{"Payment": {"transport": "direct"}}',
        "KAFKA_BROKER_URL": "localhost:9092",
        "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
        "KAFKA_CLIENT_ID": "test",
        "KAFKA_PARTITIONER": "murmur2_random",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(publisher_module, "_DEFAULT", publisher_module._Default())


def test_publish_event_builds_its_publisher_from_the_process_env_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a_fresh_process_with_a_direct_event(monkeypatch)
    paid: list[dict[str, object]] = []
    register_direct_handler("Payment", paid.append)
    publish_event("Payment", PAYLOAD)
    monkeypatch.setenv("MESSAGING_BACKEND", "rabbit")  # read once: a later change is not seen
    publish_event("Payment", PAYLOAD)
    assert paid == [PAYLOAD, PAYLOAD]


def test_a_broken_process_env_fails_at_configure_not_at_the_first_publish(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KAFKA_PARTITIONER", raising=False)
    monkeypatch.setenv("MESSAGING_BACKEND", "kafka")
    with pytest.raises(ContractError, match="KAFKA_PARTITIONER: missing"):
        configure()


def test_the_double_leaves_the_services_own_publisher_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publisher_module, "_DEFAULT", publisher_module._Default())
    own = RecordingPublisher(settings(ROUTING))
    publisher_module.use(own)
    with recording(settings(ROUTING, backend="celery")) as recorded:
        publish_event("SharesPurchased", PAYLOAD)
    publish_event("SharesPurchased", PAYLOAD)
    assert (recorded.events("celery"), own.events("kafka")) == (["SharesPurchased"], ["SharesPurchased"])
    assert not own.memory.closed


def test_a_payload_json_cannot_carry_is_refused_before_any_write() -> None:
    """Celery's JSON takes a datetime, Kafka's and Redis's did not: half an event went out."""
    event = {"user_id": "u-1", "at": datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)}
    for backend in ("celery", "kafka", "disabled"):
        publisher = recorder(backend, dual_write=backend != "disabled")
        with pytest.raises(PayloadNotJSON, match="event 'ListenSessionCompleted': its payload is not JSON"):
            publisher.publish("ListenSessionCompleted", event)
        assert written(publisher) == (), backend


def test_every_transport_gets_the_same_json_payload() -> None:
    publisher = recorder("kafka", dual_write=True)
    publisher.publish("SharesPurchased", {"contract_id": "c-7", "shares": (1, 2)})
    as_json = {"contract_id": "c-7", "shares": [1, 2]}
    assert [sent.payload for sent in publisher.sent["kafka"] + publisher.sent["celery"]] == [as_json, as_json]


def test_the_double_refuses_a_direct_event_without_its_handler_as_the_real_publisher_does() -> None:
    publisher = RecordingPublisher(settings(ROUTING))
    with pytest.raises(PublishError, match="register its handler"):
        publisher.publish("Payment", PAYLOAD)
    assert written(publisher) == ()


class Desk(enum.StrEnum):
    EQUITIES = "equities"


@pytest.mark.parametrize("value", [True, 7.0, {"id": 7}, [7]])
def test_a_key_field_other_languages_format_differently_is_refused(value: object) -> None:
    publisher = recorder()
    with pytest.raises(BadKeyField, match=r"'contract:\{contract_id\}' takes only string or integer fields"):
        publisher.publish("SharesPurchased", {"contract_id": value})
    assert written(publisher) == ()


def test_string_and_integer_key_fields_format_as_their_plain_value() -> None:
    publisher = recorder()
    for value in ("c-7", 7, Desk.EQUITIES):
        publisher.publish("SharesPurchased", {"contract_id": value})
    assert [sent.key for sent in publisher.sent["kafka"]] == [
        "contract:c-7",
        "contract:7",
        "contract:equities",
    ]


def test_threads_racing_to_the_first_publish_event_share_one_publisher(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a_fresh_process_with_a_direct_event(monkeypatch)
    loads: list[object] = []
    load = settings_module.load_settings

    def slow_load() -> Any:  # widens the window between "none yet" and "built" to every thread
        loads.append(None)
        threading.Event().wait(0.05)
        return load()

    monkeypatch.setattr(settings_module, "load_settings", slow_load)
    paid: list[dict[str, object]] = []
    register_direct_handler("Payment", paid.append)
    start = threading.Barrier(16)
    errors: list[BaseException] = []

    def first_publish() -> None:
        start.wait()
        try:
            publish_event("Payment", PAYLOAD)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=first_publish) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(paid) == 16
    assert len(loads) == 1, "one publisher for the process, none closed under another thread"


def test_the_kafka_producer_is_idempotent_and_waits_for_all_in_sync_replicas() -> None:
    config = producer_config(settings(ROUTING))
    assert (config["acks"], config["enable.idempotence"], config["partitioner"]) == (
        "all",
        True,
        "murmur2_random",
    )


class FailsFatally(Producer):  # type: ignore[misc]
    """A real librdkafka producer whose first record gets the report a fatal idempotent-producer
    error gives (e.g. an out-of-order sequence); from then on it refuses every record, as
    librdkafka does after a fatal error."""

    dead = False

    def produce(self, topic: str, *args: Any, on_delivery: Any, **kwargs: Any) -> None:
        if self.dead:
            raise KafkaException(KafkaError(KafkaError._FATAL, "the producer failed fatally", fatal=True))
        self.dead = True
        on_delivery(KafkaError(KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, "out of order", fatal=True), None)


def test_a_fatal_producer_error_fails_that_publish_and_the_next_one_gets_a_new_producer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[Any] = []

    def on_librdkafkas_mock_cluster(config: dict[str, Any]) -> Any:
        kind = FailsFatally if not built else Producer
        built.append(kind(config | {"test.mock.num.brokers": 1, "log_level": 0}))
        return built[-1]

    monkeypatch.setattr(publisher_module, "new_producer", on_librdkafkas_mock_cluster)
    with Publisher(settings(ROUTING), delivery_timeout=10) as publisher:
        with pytest.raises(PublishError, match=r"kafka failed.*out of order"):
            publisher.publish("SharesPurchased", PAYLOAD)
        published = publisher.publish("SharesPurchased", PAYLOAD)
    assert published.delivered == ("kafka",) and published.offset == 0
    assert [type(producer) for producer in built] == [FailsFatally, Producer]


def test_a_timed_out_kafka_write_is_reported_as_maybe_written() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{unused.getsockname()[1]}"
    publisher = Publisher(settings(ROUTING, dual_write=True, KAFKA_BROKER_URL=nowhere), delivery_timeout=0.5)
    with pytest.raises(PublishError, match="kafka may have been written") as raised:
        publisher.publish("SharesPurchased", PAYLOAD)
    assert raised.value.maybe_written and raised.value.undelivered == ("kafka", "celery")
    publisher.close()
