"""Really try each path as a service's principal: True when the broker allows it."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from infra.live.kafka_broker import Broker

DENIALS = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
}
TIMEOUT_S = 20.0


class UnexpectedError(AssertionError):
    """The broker answered with something that is neither success nor an authorization denial."""


def _denied(error: KafkaError) -> bool:
    if error.code() in DENIALS:
        return True
    raise UnexpectedError(str(error))


def can_authenticate(broker: Broker, user: str, password: str) -> bool:
    """Log in and read the cluster's metadata: False when the broker refuses the credential."""
    errors: list[KafkaError] = []
    admin = AdminClient(broker.client_config(user, password) | {"error_cb": errors.append})
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            admin.list_topics(timeout=2)
            return True
        except KafkaException as exc:
            admin.poll(0)  # error_cb is served only by poll()
            if any(error.code() == KafkaError._AUTHENTICATION for error in errors):
                return False
            if time.monotonic() > deadline:
                raise UnexpectedError(f"{user}: neither logged in nor refused: {exc}") from exc


def can_produce(broker: Broker, user: str, password: str, topic: str, idempotent: bool = False) -> bool:
    config = broker.client_config(user, password) | {
        "acks": "all",
        "message.timeout.ms": str(int(TIMEOUT_S * 1000)),
        "enable.idempotence": str(idempotent).lower(),
    }
    producer = Producer(config)
    outcome: list[KafkaError | None] = []
    producer.produce(
        topic, key=b"matrix", value=b"access check", on_delivery=lambda err, _msg: outcome.append(err)
    )
    producer.flush(TIMEOUT_S + 5)
    if not outcome:
        raise UnexpectedError(f"no delivery report for {topic}")
    error = outcome[0]
    return error is None or not _denied(error)


def can_consume(broker: Broker, user: str, password: str, topic: str, group: str) -> bool:
    """Join ``group``, read a message of ``topic`` and commit its offset."""
    config = broker.client_config(user, password) | {
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": "false",
        "session.timeout.ms": "6000",
    }
    consumer = Consumer(config)
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                return not _denied(error)
            try:
                consumer.commit(message=message, asynchronous=False)
            except KafkaException as exc:
                return not _denied(exc.args[0])
            return True
        raise UnexpectedError(f"no message and no error from {topic} within {TIMEOUT_S}s")
    finally:
        consumer.close()


def _admin_outcome(futures: dict[object, object]) -> bool:
    for future in futures.values():
        try:
            future.result()  # type: ignore[attr-defined]
        except KafkaException as exc:
            return not _denied(exc.args[0])
    return True


def can_create_topic(broker: Broker, user: str, password: str, prefix: str) -> bool:
    admin = AdminClient(broker.client_config(user, password))
    name = f"{prefix}unplanned-{uuid.uuid4().hex[:8]}"
    return _admin_outcome(admin.create_topics([NewTopic(name, 1, 1)], request_timeout=TIMEOUT_S))


def can_alter_config(broker: Broker, user: str, password: str, topic: str) -> bool:
    admin = AdminClient(broker.client_config(user, password))
    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    return _admin_outcome(admin.incremental_alter_configs([resource], request_timeout=TIMEOUT_S))


def can_use_transactional_id(broker: Broker, user: str, password: str, transactional_id: str) -> bool:
    producer = Producer(broker.client_config(user, password) | {"transactional.id": transactional_id})
    try:
        producer.init_transactions(TIMEOUT_S)
    except KafkaException as exc:
        return not _denied(exc.args[0])
    return True


def transactional_producer(broker: Broker, user: str, password: str, transactional_id: str) -> Producer:
    producer = Producer(broker.client_config(user, password) | {"transactional.id": transactional_id})
    producer.init_transactions(TIMEOUT_S)
    return producer


def commit_one(producer: Producer, topic: str) -> None:
    """One transaction with one record; raises KafkaException when fenced or denied."""
    producer.begin_transaction()
    producer.produce(topic, key=b"txn", value=b"transactional record")
    producer.commit_transaction(TIMEOUT_S)
