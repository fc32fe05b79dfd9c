"""A consuming service's Celery app for the backend-flip test, as a team writes it: the client
configures the fallback (broker, queues of its topics, one task per event), and the handler
records each event's id in the Redis list `handled` of FALLBACK_RECORD_URL so the test can count.

    celery -A tests.integration.fallback_worker worker --pool prefork
"""

from __future__ import annotations

import os

import redis
from celery import Celery
from kafka_platform_client import Event, load_settings
from kafka_platform_client.celery_fallback import configure_fallback_worker

from tests.integration.client_env import RECORDED

app = Celery("fallback-worker")


def record(event: Event) -> None:
    redis.Redis.from_url(os.environ["FALLBACK_RECORD_URL"]).rpush(RECORDED, event.payload["id"])


configure_fallback_worker(app, load_settings(), {"user.mood.created": record})
