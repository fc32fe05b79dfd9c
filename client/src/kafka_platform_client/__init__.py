"""The services' side of the kafka-platform env contract (docs/env-contract.md)."""

from importlib.metadata import version

from kafka_platform_client.consumer import Event, EventConsumer
from kafka_platform_client.publisher import (
    BadKeyField,
    MissingKeyField,
    PayloadNotJSON,
    Published,
    Publisher,
    PublishError,
    UnknownEvent,
    configure,
    publish_event,
    publish_event_async,
    register_direct_handler,
)
from kafka_platform_client.settings import ClientSettings, ContractError, load_settings

__version__ = version("kafka-platform-client")

__all__ = [
    "BadKeyField",
    "ClientSettings",
    "ContractError",
    "Event",
    "EventConsumer",
    "MissingKeyField",
    "PayloadNotJSON",
    "PublishError",
    "Published",
    "Publisher",
    "UnknownEvent",
    "__version__",
    "configure",
    "load_settings",
    "publish_event",
    "publish_event_async",
    "register_direct_handler",
]
