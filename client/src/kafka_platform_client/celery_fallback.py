"""The Celery side of the fallback: what a consuming service adds to its Celery app so that,
with MESSAGING_BACKEND=celery (or dual write), the events it reads from Kafka reach the same
handlers through Celery.

The publisher sends an event to the Celery task named after it (or the name a team gives in
`Publisher(celery_tasks=...)`) on the queue named after the event's Kafka topic; a worker
configured here consumes one queue per topic in KAFKA_CONSUME_TOPICS, so Celery routes exactly
as Kafka does. Tasks acknowledge late: a worker lost mid-task gets the task again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kafka_platform_client.consumer import Event, Handler
from kafka_platform_client.publisher import default_task_name
from kafka_platform_client.settings import ClientSettings


def configure_fallback_worker(
    app: Any,
    settings: ClientSettings,
    handlers: Mapping[str, Handler],
    *,
    task_names: Mapping[str, str] | None = None,
) -> list[str]:
    """Point `app` (a celery.Celery) at CELERY_BROKER_URL, consume the queues of the service's
    topics, and register one task per handled event; returns the queue names."""
    from kombu.entity import Queue

    if settings.celery_broker_url is None:
        raise ValueError("CELERY_BROKER_URL is not set: this stack has no Celery broker")
    queues = list(settings.kafka_consume_topics)
    if not queues:
        raise ValueError("KAFKA_CONSUME_TOPICS is empty: this service consumes nothing")
    app.conf.update(
        broker_url=settings.celery_broker_url.get_secret_value(),
        task_queues=[Queue(name) for name in queues],  # type: ignore[no-untyped-call]
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
    )
    for event_type, handler in handlers.items():
        name = (task_names or {}).get(event_type, default_task_name(event_type))
        app.task(name=name, acks_late=True, reject_on_worker_lost=True)(_task(event_type, handler))
    return queues


def _task(event_type: str, handler: Handler) -> Any:
    def run(payload: dict[str, Any]) -> None:
        handler(Event(event_type=event_type, payload=payload, source="celery"))

    run.__name__ = f"handle_{event_type.replace('.', '_')}"
    return run
