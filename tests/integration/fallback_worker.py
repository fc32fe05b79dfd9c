"""A consuming service's Celery app, as a team writes it: the client configures the fallback
(broker, the service's own queue, one task per event, a default for the rest), and the handlers
record each event's id in the Redis list `handled` of FALLBACK_RECORD_URL so a test can count.
An event whose id starts with FAIL_ONCE fails its first attempt (a transient error).

    celery -A tests.integration.fallback_worker worker --pool prefork
"""

from __future__ import annotations

import os

import redis
from celery import Celery
from kafka_platform_client import Event, load_settings
from kafka_platform_client.celery_fallback import configure_fallback_worker

from tests.integration.client_env import FAIL_ONCE, RECORDED

app = Celery("fallback-worker")


def record(event: Event) -> None:
    recorded = redis.Redis.from_url(os.environ["FALLBACK_RECORD_URL"])
    event_id = str(event.payload["id"])
    if recorded.incr(f"attempts:{event_id}") == 1 and event_id.startswith(FAIL_ONCE):
        raise RuntimeError(f"a transient failure handling {event_id}")
    recorded.rpush(RECORDED, event_id)


configure_fallback_worker(app, load_settings(), {"user.mood.created": record}, default=record)
