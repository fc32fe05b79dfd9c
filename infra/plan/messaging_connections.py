"""Where services reach Redis (events routed to a channel) and the Celery broker (the
`celery` backend): from the stack's settings, or the compose Redis on a local stack."""

from __future__ import annotations

from infra.model.settings import (
    ConnectionSettings,
    StackSettings,
    celery_services,
    dual_writers,
    redis_events,
)
from infra.model.stacks import SECRET_URL_KEYS
from infra.model.topology import CHANNEL_TRANSPORTS, Topology
from infra.plan.model import ConnectionPlan

REDIS_URL_ENV = "REDIS_URL"
CELERY_BROKER_URL_ENV = "CELERY_BROKER_URL"
# The compose Redis: database 0 for event channels, 1 for the Celery broker.
LOCAL_DATABASES = {"redis": 0, "celery_broker": 1}


def plan_connections(
    settings: StackSettings, topology: Topology
) -> tuple[ConnectionPlan | None, ConnectionPlan | None]:
    """(Redis, Celery broker) of the stack; None where it has none."""
    messaging = settings.messaging
    redis = _connection("redis", messaging.redis)
    celery = _connection("celery_broker", messaging.celery_broker)
    if settings.kafka.provider == "local" and needs_local_redis(settings, topology):
        local = settings.kafka.local_or_default
        redis = redis or _local("redis", local.redis_host_port)
        celery = celery or _local("celery_broker", local.redis_host_port)
    return redis, celery


def needs_local_redis(settings: StackSettings, topology: Topology) -> bool:
    """A local stack runs Redis when events go to a channel, or to Celery (a service's backend,
    or its dual write)."""
    messaging = settings.messaging
    return (
        bool(
            redis_events(messaging, topology)
            or celery_services(messaging, topology)
            or dual_writers(messaging, topology)
        )
        or messaging.backend == "celery"
    )


def _connection(setting: str, connection: ConnectionSettings | None) -> ConnectionPlan | None:
    if connection is None:
        return None
    if connection.secret:
        return ConnectionPlan(secret_config=SECRET_URL_KEYS[setting])
    return ConnectionPlan(url=connection.url)


def _local(setting: str, host_port: int) -> ConnectionPlan:
    database = LOCAL_DATABASES[setting]
    return ConnectionPlan(
        url=f"redis://redis:6379/{database}", host_url=f"redis://localhost:{host_port}/{database}"
    )


def connection_env(
    routing: dict[str, dict[str, str]], redis: ConnectionPlan | None, celery: ConnectionPlan | None
) -> tuple[dict[str, str], dict[str, str]]:
    """(ConfigMap env, Secret env descriptions) of one service: REDIS_URL where its routing
    publishes to a channel, CELERY_BROKER_URL wherever the stack has a broker."""
    env: dict[str, str] = {}
    secret_env: dict[str, str] = {}
    uses_redis = any(route["transport"] in CHANNEL_TRANSPORTS for route in routing.values())
    for key, connection in ((REDIS_URL_ENV, redis if uses_redis else None), (CELERY_BROKER_URL_ENV, celery)):
        if connection is None:
            continue
        if connection.url is not None:
            env[key] = connection.url
        else:
            secret_env[key] = f"URL from secret config {connection.secret_config}"
    return env, secret_env
