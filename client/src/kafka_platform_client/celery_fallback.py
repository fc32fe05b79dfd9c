"""The Celery side of the fallback: what a consuming service adds to its Celery app so that,
with MESSAGING_BACKEND=celery (or dual write), the events it reads from Kafka reach the same
handlers through Celery.

The publisher sends an event to the Celery task named after it (or the name a team gives in
`Publisher(celery_tasks=...)`) on the queue of every service consuming the event's topic (the
route's `queues` in MESSAGING_ROUTING, each named after the consumer's group); a worker
configured here consumes its own service's queue only, so every consuming service gets every
event, as on Kafka. Nothing is dropped: a handler that raises is retried (with backoff, without a
cap) as the Kafka consumer re-reads a failed record, tasks acknowledge late (a worker lost
mid-task gets the task again), and an event with no handler of its own goes to `default` (or is
kept and retried until a release handles it). Order is not kept on Celery (retries, several
worker processes), nor across a flip of MESSAGING_BACKEND."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kafka_platform_client.consumer import Event, Handler
from kafka_platform_client.publisher import default_task_name
from kafka_platform_client.settings import ClientSettings

log = logging.getLogger("kafka_platform_client")

# Where the worker re-queues an event whose task it has not registered: (task name, payload).
UNHANDLED_TASK = "kafka_platform.unhandled"
# A failed handler comes again after 0-1 s, then up to twice as long each time, at most 5 min.
RETRY_POLICY: dict[str, Any] = {
    "autoretry_for": (Exception,),
    "max_retries": None,
    "retry_backoff": 1,
    "retry_backoff_max": 300,
    "retry_jitter": True,
}


def configure_fallback_worker(
    app: Any,
    settings: ClientSettings,
    handlers: Mapping[str, Handler],
    *,
    task_names: Mapping[str, str] | None = None,
    default: Handler | None = None,
) -> list[str]:
    """Point `app` (a celery.Celery) at CELERY_BROKER_URL, consume this service's own queue
    (named after KAFKA_CONSUMER_GROUP, or KAFKA_CONSUMER_GROUP_PREFIX) and register one task per
    handled event; `default` receives the events of its topics that have no handler here (e.g.
    the one handler the service gives `EventConsumer`). Returns the queue names."""
    from kombu.entity import Queue

    if settings.celery_broker_url is None:
        raise ValueError("CELERY_BROKER_URL is not set: this stack has no Celery broker")
    if not settings.kafka_consume_topics:
        raise ValueError("KAFKA_CONSUME_TOPICS is empty: this service consumes nothing")
    queue = settings.own_celery_queue()
    app.conf.update(
        broker_url=settings.celery_broker_url.get_secret_value(),
        task_queues=[Queue(queue)],  # type: ignore[no-untyped-call]
        task_default_queue=queue,
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_consumer=_consumer_keeping_unknown_tasks(queue),
    )
    names = {
        event_type: (task_names or {}).get(event_type, default_task_name(event_type))
        for event_type in handlers
    }
    for event_type, handler in handlers.items():
        app.task(name=names[event_type], acks_late=True, reject_on_worker_lost=True, **RETRY_POLICY)(
            _task(event_type, handler)
        )
    event_types = {name: event_type for event_type, name in names.items()}
    app.task(name=UNHANDLED_TASK, acks_late=True, reject_on_worker_lost=True, **RETRY_POLICY)(
        _unhandled(event_types, default)
    )
    return [queue]


def _task(event_type: str, handler: Handler) -> Any:
    def run(payload: dict[str, Any]) -> None:
        handler(Event(event_type=event_type, payload=payload, source="celery"))

    run.__name__ = f"handle_{event_type.replace('.', '_')}"
    return run


def _unhandled(event_types: Mapping[str, str], default: Handler | None) -> Any:
    def handle_unhandled(task_name: str, payload: dict[str, Any]) -> None:
        event_type = event_types.get(task_name, task_name)
        if default is None:
            log.error("celery fallback: no handler for event '%s'; kept and retried", event_type)
            raise LookupError(f"no handler for event '{event_type}' (configure_fallback_worker's default)")
        default(Event(event_type=event_type, payload=payload, source="celery"))

    return handle_unhandled


def _consumer_keeping_unknown_tasks(queue: str) -> Any:
    """The worker's consumer, except that a task it has not registered (an event of its topics
    with no handler of its own) goes to UNHANDLED_TASK on `queue` before it is acknowledged;
    Celery's own rejects it, and the event is gone."""
    from celery.worker.consumer import Consumer

    class KeepingConsumer(Consumer):  # type: ignore[misc]
        def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
            name = (message.headers or {}).get("task")
            if name is None:  # not a task message of the client's (protocol 2) kind
                super().on_unknown_task(body, message, exc)
                return
            args, _kwargs, _embed = message.decode()
            self.app.send_task(UNHANDLED_TASK, args=(name, *args), queue=queue, retry=True)
            message.ack()
            log.warning("celery fallback: '%s' has no task of its own here; sent to %s", name, UNHANDLED_TASK)

    return KeepingConsumer
