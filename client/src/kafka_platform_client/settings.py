"""The env contract as a typed object: every variable a service's ConfigMap and Secret carry
(docs/env-contract.md), read once at start-up. A missing or malformed variable is a
`ContractError` naming it and what was expected, never a surprise at the first publish."""

from __future__ import annotations

import json
import os
import re
import string
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

Backend = Literal["kafka", "celery", "disabled"]
Transport = Literal["kafka", "redis", "both", "direct"]
TOPIC_TRANSPORTS = frozenset({"kafka", "both"})
CHANNEL_TRANSPORTS = frozenset({"redis", "both"})
TOPIC_PREFIX = "KAFKA_TOPIC_"
# The one name in the contract that stands for a family: KAFKA_TOPIC_USER_EVENTS, ...
TOPIC_FAMILY = f"{TOPIC_PREFIX}<KEY>"
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_BROKER = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")


class ContractError(ValueError):
    """The environment does not hold what the platform's contract promises: one line per variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "the service's env does not match the kafka-platform contract:\n  " + "\n  ".join(problems)
        )


class Route(BaseModel):
    """One event's entry in MESSAGING_ROUTING."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transport: Transport
    topic: str | None = None
    key: str | None = None
    channel: str | None = None
    # The Celery fallback's queues: one per service consuming the topic, named after its group.
    queues: list[str] | None = None

    @model_validator(mode="after")
    def _complete(self) -> Route:
        if self.transport in TOPIC_TRANSPORTS and not self.topic:
            raise ValueError(f"transport '{self.transport}' needs a topic")
        if self.queues is not None and self.transport not in TOPIC_TRANSPORTS:
            raise ValueError(f"transport '{self.transport}' has no topic, so no Celery queues")
        if self.transport in CHANNEL_TRANSPORTS and not self.channel:
            raise ValueError(f"transport '{self.transport}' needs a channel")
        if self.key is not None:
            key_fields(self.key)
        return self

    @property
    def on_topic(self) -> bool:
        return self.transport in TOPIC_TRANSPORTS

    @property
    def on_channel(self) -> bool:
        return self.transport in CHANNEL_TRANSPORTS


def key_fields(template: str) -> list[str]:
    """The payload fields a key template such as `contract:{contract_id}` names."""
    fields = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(f"key template '{template}' may only name payload fields, e.g. {{user_id}}")
        fields.append(name)
    return fields


def _csv(value: object) -> object:
    if isinstance(value, str):
        return tuple(part for part in value.split(",") if part) if value else ()
    return value


def _strict_bool(value: object) -> object:
    if isinstance(value, str):
        if value not in {"true", "false"}:
            raise ValueError(f"'{value}' is neither true nor false")
        return value == "true"
    return value


def _url(value: SecretStr | None, schemes: tuple[str, ...]) -> SecretStr | None:
    if value is None:
        return None
    parsed = urlsplit(value.get_secret_value())
    if parsed.scheme not in schemes or not parsed.hostname:
        raise ValueError("a URL of another kind")  # never echoed: it may hold a password
    return value


def env(name: str, description: str, default: Any = ..., **kwargs: Any) -> Any:
    """A field read from the variable `name`; `description` is what an error says was expected."""
    if "default_factory" in kwargs:
        return Field(validation_alias=name, description=description, **kwargs)
    return Field(default, validation_alias=name, description=description, **kwargs)


class ClientSettings(BaseSettings):
    """Every variable of the contract. Build it with `load_settings()` (the process env) or
    `ClientSettings.from_env(mapping)`."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", populate_by_name=False)

    messaging_backend: Backend = env("MESSAGING_BACKEND", "one of kafka, celery, disabled")
    messaging_dual_write: bool = env("MESSAGING_DUAL_WRITE", "true or false")
    messaging_routing: dict[str, Route] = env(
        "MESSAGING_ROUTING",
        'a JSON object {"<event>": {"transport": ..., "topic": ..., "key": ..., "channel": ..., '
        '"queues": [...]}}',
    )
    kafka_broker_url: str = env("KAFKA_BROKER_URL", "host:port[,host:port...]")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = env(
        "KAFKA_SECURITY_PROTOCOL", f"one of {', '.join(SECURITY_PROTOCOLS)}"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = env(
        "KAFKA_SASL_MECHANISM", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", None
    )
    kafka_sasl_username: str | None = env("KAFKA_SASL_USERNAME", "the service's SASL user (its Secret)", None)
    kafka_sasl_password: SecretStr | None = env(
        "KAFKA_SASL_PASSWORD", "the service's SASL password (its Secret)", None
    )
    kafka_client_id: str = env("KAFKA_CLIENT_ID", "a client id", min_length=1)
    kafka_partitioner: Literal[
        "random", "consistent", "consistent_random", "murmur2", "murmur2_random", "fnv1a", "fnv1a_random"
    ] = env("KAFKA_PARTITIONER", "a librdkafka partitioner name (the platform sets murmur2_random)")
    kafka_consumer_group: str | None = env("KAFKA_CONSUMER_GROUP", "a consumer group id", None)
    kafka_consumer_group_prefix: str | None = env(
        "KAFKA_CONSUMER_GROUP_PREFIX", "a consumer group prefix (one group per instance)", None
    )
    kafka_transactional_id_prefix: str | None = env(
        "KAFKA_TRANSACTIONAL_ID_PREFIX", "a transactional id prefix", None
    )
    kafka_enable_idempotence: bool = env("KAFKA_ENABLE_IDEMPOTENCE", "true or false", False)
    kafka_produce_topics: tuple[str, ...] = env("KAFKA_PRODUCE_TOPICS", "comma-separated topic names", ())
    kafka_consume_topics: tuple[str, ...] = env("KAFKA_CONSUME_TOPICS", "comma-separated topic names", ())
    kafka_topics: dict[str, str] = env(
        TOPIC_FAMILY, "one KAFKA_TOPIC_<KEY>=<topic name> per topic the service uses", default_factory=dict
    )
    kafka_streams_application_id: str | None = env(
        "KAFKA_STREAMS_APPLICATION_ID", "a Kafka Streams application.id", None
    )
    kafka_streams_processing_guarantee: Literal["at_least_once", "exactly_once_v2"] | None = env(
        "KAFKA_STREAMS_PROCESSING_GUARANTEE", "at_least_once or exactly_once_v2", None
    )
    kafka_connect_group_id: str | None = env("KAFKA_CONNECT_GROUP_ID", "a Connect group.id", None)
    kafka_connect_config_topic: str | None = env("KAFKA_CONNECT_CONFIG_TOPIC", "a topic name", None)
    kafka_connect_offset_topic: str | None = env("KAFKA_CONNECT_OFFSET_TOPIC", "a topic name", None)
    kafka_connect_status_topic: str | None = env("KAFKA_CONNECT_STATUS_TOPIC", "a topic name", None)
    kafka_connect_connector_prefix: str | None = env(
        "KAFKA_CONNECT_CONNECTOR_PREFIX", "a connector name prefix", None
    )
    redis_url: SecretStr | None = env("REDIS_URL", "a redis:// or rediss:// URL", None)
    celery_broker_url: SecretStr | None = env(
        "CELERY_BROKER_URL", "a redis://, rediss://, amqp://, amqps:// or sqs:// URL", None
    )
    schema_registry_url: str | None = env(
        "SCHEMA_REGISTRY_URL", "the Schema Registry's http:// or https:// base URL", None
    )
    schema_registry_username: str | None = env(
        "SCHEMA_REGISTRY_USERNAME", "the Schema Registry user (its Secret)", None
    )
    schema_registry_password: SecretStr | None = env(
        "SCHEMA_REGISTRY_PASSWORD", "the Schema Registry password (its Secret)", None
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _ContractEnv(settings_cls))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ClientSettings:
        """The settings from `environ` (e.g. a ConfigMap's and Secret's data); ContractError if it
        breaks the contract."""
        try:
            return cls.model_validate(contract_values(environ))
        except ValidationError as error:
            raise ContractError(_problems(error)) from None

    @classmethod
    def variables(cls) -> dict[str, FieldInfo]:
        """The contract's variable names (KAFKA_TOPIC_<KEY> for the topic family) and their fields."""
        return {str(field.validation_alias): field for field in cls.model_fields.values()}

    @field_validator("messaging_dual_write", "kafka_enable_idempotence", mode="before")
    @classmethod
    def _bools(cls, value: object) -> object:
        return _strict_bool(value)

    @field_validator("kafka_produce_topics", "kafka_consume_topics", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _csv(value)

    @field_validator("messaging_routing", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as error:
                raise ValueError(f"not JSON ({error.msg} at character {error.pos})") from None
        return value

    @field_validator("kafka_broker_url")
    @classmethod
    def _brokers(cls, value: str) -> str:
        bad = [part for part in value.split(",") if not _BROKER.match(part)]
        if not value or bad:
            raise ValueError(f"{', '.join(repr(part) for part in bad) or 'empty'} is not host:port")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: SecretStr | None) -> SecretStr | None:
        return _url(value, ("redis", "rediss"))

    @field_validator("celery_broker_url")
    @classmethod
    def _celery(cls, value: SecretStr | None) -> SecretStr | None:
        return _url(value, ("redis", "rediss", "amqp", "amqps", "sqs"))

    @field_validator("schema_registry_url")
    @classmethod
    def _registry(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = urlsplit(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.password is not None:
            raise ValueError("not an http:// or https:// URL without a credential")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ClientSettings:
        problems = []
        registry_login = {
            "SCHEMA_REGISTRY_USERNAME": self.schema_registry_username,
            "SCHEMA_REGISTRY_PASSWORD": self.schema_registry_password,
        }
        for name, value in registry_login.items():
            other = next(key for key in registry_login if key != name)
            if value is None and registry_login[other] is not None:
                problems.append(f"{name}: missing; {other} is set (the registry's login needs both)")
        if self.schema_registry_username is not None and self.schema_registry_url is None:
            problems.append("SCHEMA_REGISTRY_URL: missing; SCHEMA_REGISTRY_USERNAME is set")
        if self.kafka_security_protocol.startswith("SASL"):
            for name, value in (
                ("KAFKA_SASL_MECHANISM", self.kafka_sasl_mechanism),
                ("KAFKA_SASL_USERNAME", self.kafka_sasl_username),
                ("KAFKA_SASL_PASSWORD", self.kafka_sasl_password),
            ):
                if not value:
                    problems.append(
                        f"{name}: missing; KAFKA_SECURITY_PROTOCOL is {self.kafka_security_protocol}"
                    )
        if self.celery_broker_url is None:
            if self.messaging_backend == "celery":
                problems.append("CELERY_BROKER_URL: missing; MESSAGING_BACKEND is celery")
            elif self.messaging_dual_write:
                problems.append(
                    "CELERY_BROKER_URL: missing; MESSAGING_DUAL_WRITE=true writes every event to Celery too"
                )
        if self.messaging_dual_write and self.messaging_backend == "disabled":
            problems.append("MESSAGING_DUAL_WRITE: true, but MESSAGING_BACKEND is disabled")
        channel_events = sorted(name for name, route in self.messaging_routing.items() if route.on_channel)
        if channel_events and self.redis_url is None:
            problems.append(
                f"REDIS_URL: missing; MESSAGING_ROUTING sends {', '.join(channel_events)} to Redis"
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def sasl(self) -> dict[str, str]:
        """librdkafka's SASL settings; empty without SASL."""
        if not self.kafka_security_protocol.startswith("SASL"):
            return {}
        assert self.kafka_sasl_password is not None  # _consistent checked it
        return {
            "sasl.mechanism": str(self.kafka_sasl_mechanism),
            "sasl.username": str(self.kafka_sasl_username),
            "sasl.password": self.kafka_sasl_password.get_secret_value(),
        }

    def celery_queues(self, topic: str) -> list[str]:
        """The Celery queues an event of `topic` goes to: those of the services consuming it, so
        each gets every event (never competing consumers of one shared queue)."""
        routes = [route for route in self.messaging_routing.values() if route.topic == topic]
        if not routes or any(route.queues is None for route in routes):
            raise LookupError(
                f"MESSAGING_ROUTING names no Celery queues for topic '{topic}' (the stack has no "
                "messaging.celery_broker, or the env is from an older platform release)"
            )
        return sorted({queue for route in routes for queue in route.queues or ()})

    def own_celery_queue(self) -> str:
        """The Celery queue this service's fallback worker consumes: named after its group."""
        queue = self.kafka_consumer_group or self.kafka_consumer_group_prefix
        if queue is None:
            raise ValueError(
                "neither KAFKA_CONSUMER_GROUP nor KAFKA_CONSUMER_GROUP_PREFIX is set: this service "
                "consumes nothing, so it has no Celery queue"
            )
        return queue

    def kafka_connection(self) -> dict[str, str]:
        """What every librdkafka client of this service sets: brokers, security, client id."""
        return {
            "bootstrap.servers": self.kafka_broker_url,
            "security.protocol": self.kafka_security_protocol,
            "client.id": self.kafka_client_id,
            **self.sasl,
        }


def contract_values(environ: Mapping[str, str]) -> dict[str, Any]:
    """The contract's variables of `environ` (anything else in a process env is not ours),
    with the KAFKA_TOPIC_<KEY> family gathered into one value."""
    names = set(ClientSettings.variables()) - {TOPIC_FAMILY}
    values: dict[str, Any] = {name: value for name, value in environ.items() if name in names}
    topics = {
        name.removeprefix(TOPIC_PREFIX): value
        for name, value in environ.items()
        if name.startswith(TOPIC_PREFIX) and name not in names
    }
    if topics:
        values[TOPIC_FAMILY] = topics
    return values


class _ContractEnv(PydanticBaseSettingsSource):
    """The process env, read through `contract_values`."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ reads the whole contract at once

    def __call__(self) -> dict[str, Any]:
        return contract_values(os.environ)


def _problems(error: ValidationError) -> list[str]:
    fields = ClientSettings.variables()
    problems: list[str] = []
    for item in error.errors(include_url=False):
        location = item["loc"]
        if not location:  # a check across variables: its message names them
            problems.extend(str(item["msg"]).removeprefix("Value error, ").splitlines())
            continue
        name = str(location[0])
        field = fields.get(name)
        detail = " > ".join(str(part) for part in location[1:])
        where = f"{name}{' at ' + detail if detail else ''}"
        if item["type"] == "missing":
            problems.append(f"{where}: missing; expected {field.description if field else 'a value'}")
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            expected = f" (expected {field.description})" if field and not detail else ""
            problems.append(f"{where}: {message}{expected}")
    return problems


def load_settings() -> ClientSettings:
    """The process env's settings, read once at start-up; ContractError names what is wrong."""
    return ClientSettings.from_env(os.environ)
