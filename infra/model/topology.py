"""The environment-independent topology: topics, the services using them, event routing."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from infra.model.durations import parse_retention_ms
from infra.model.errors import ConfigError, ProblemCollector, did_you_mean, without_follow_ons
from infra.model.kafka_topic_configs import topic_config_problem
from infra.model.names import (
    RESERVED_SERVICE_NAMES,
    collision_key,
    dns_label_problem,
    env_var_suffix,
    topic_name_problem,
)
from infra.model.pydantic_problems import Checked, validate_setting_aside
from infra.model.yaml_files import load_yaml_file

Transport = Literal["kafka", "redis", "both", "direct"]
CleanupPolicy = Literal["delete", "compact", "compact,delete"]
ServiceKind = Literal["app", "streams", "connect"]
# How an event's schema is named in a Schema Registry: Confluent's TopicNameStrategy
# (`<topic>-value`), RecordNameStrategy (`<record full name>`), TopicRecordNameStrategy.
SubjectNameStrategy = Literal["topic", "record", "topic_record"]
# A Connect worker's own topics, made by the platform (compacted) so the worker never creates topics.
CONNECT_TOPICS = {"config": "connect-configs", "offset": "connect-offsets", "status": "connect-status"}
TOPIC_TRANSPORTS: frozenset[str] = frozenset({"kafka", "both"})
CHANNEL_TRANSPORTS: frozenset[str] = frozenset({"redis", "both"})


def _retention(value: object) -> int:
    return parse_retention_ms(value)


RetentionMs = Annotated[int, BeforeValidator(_retention)]


def _config_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise ValueError(f"must be a string, number or boolean (got {type(value).__name__})")


ConfigValue = Annotated[str, BeforeValidator(_config_value)]


def _alert_seconds(value: object) -> int:
    """How long a condition must hold before an alert fires: a duration (``5m``) in whole seconds."""
    whole_seconds = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    milliseconds = value * 1000 if whole_seconds else parse_retention_ms(value)  # type: ignore[operator]
    if milliseconds <= 0 or milliseconds % 1000:
        raise ValueError(f"'{value}' must be a positive whole number of seconds, e.g. 30s, 5m, 1h")
    return milliseconds // 1000


AlertSeconds = Annotated[int, BeforeValidator(_alert_seconds)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LagThresholds(StrictModel):
    """When a consumer is too far behind: unconsumed messages, and the age of the oldest one."""

    messages: int | None = Field(default=None, ge=1)
    seconds: AlertSeconds | None = None


class MonitoringOverride(StrictModel):
    """A service's or a topic's own thresholds; unset fields keep the next level's."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    enabled: bool = True  # a service may opt out of lag alerts
    lag: LagThresholds = Field(default_factory=LagThresholds)
    for_: AlertSeconds | None = Field(default=None, alias="for")


class MonitoringDefaults(StrictModel):
    """Every consumer's thresholds unless its service or topic says otherwise."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    lag: LagThresholds = Field(default_factory=lambda: LagThresholds(messages=1000, seconds=300))
    for_: AlertSeconds = Field(default=300, alias="for")


class TopicSpec(StrictModel):
    # The topic's full name, for topics that already exist under a name of their own
    # (default "<domain>.<key>"). A pr-<n> preview still prefixes it with "pr-<n>.".
    name: str | None = None
    partitions: int | None = Field(default=None, ge=1)
    retention: RetentionMs | None = None
    cleanup: CleanupPolicy = "delete"
    key: str | None = None
    description: str | None = None
    config: dict[str, ConfigValue] = Field(default_factory=dict)
    monitoring: MonitoringOverride | None = None

    @field_validator("config")
    @classmethod
    def _documented_keys_only(cls, config: dict[str, str]) -> dict[str, str]:
        for key in config:
            if problem := topic_config_problem(key):
                raise ValueError(problem)
        return config


class ServiceSpec(StrictModel):
    # app: a producer and/or consumer; streams: a Kafka Streams application; connect: a Kafka
    # Connect worker (produces: its source connectors' topics, consumes: its sink connectors').
    kind: ServiceKind = "app"
    produces: list[str] = Field(default_factory=list)
    consumes: list[str] = Field(default_factory=list)
    # app: the group it joins; connect: the workers' group. Default "<domain>.<service>".
    consumer_group: str | None = None
    # streams: its application.id (default "<domain>.<service>"): the group it joins, and the
    # prefix "<application.id>-" of its internal topics and (exactly-once) transactional ids.
    application_id: str | None = None
    # Every instance joins its own group `<group>.<instance>` (e.g. cache invalidation, where each
    # replica must see every message); the grant is PREFIXED on `<group>.`.
    consumer_group_per_instance: bool = False
    # Transactional ids are `<domain>.<service>.<instance>`: one id per replica, because a second
    # producer with the same id fences the first. The grant is PREFIXED on `<domain>.<service>.`.
    # For kind streams: processing.guarantee=exactly_once_v2 (ids "<application.id>-...").
    transactional: bool = False
    # The prefix of its transactional ids, when it already uses one (default "<domain>.<service>.").
    transactional_id_prefix: str | None = None
    idempotent: bool = False
    description: str | None = None
    monitoring: MonitoringOverride | None = None


class EventSpec(StrictModel):
    transport: Transport
    topic: str | None = None
    channel: str | None = None
    key: str | None = None
    category: str | None = None
    # An Avro file (.avsc) in the project: registered under the event's subject, and each change
    # judged by `diff` against the version its consumers read.
    schema_file: str | None = Field(default=None, alias="schema")


class Topology(StrictModel):
    domain: str
    topics: dict[str, TopicSpec] = Field(min_length=1)
    # May be empty: a cluster's topics can be managed before any service is declared.
    services: dict[str, ServiceSpec] = Field(default_factory=dict)
    events: dict[str, EventSpec] = Field(default_factory=dict)
    subject_name_strategy: SubjectNameStrategy = "topic"
    monitoring: MonitoringDefaults = Field(default_factory=MonitoringDefaults)

    def topic_name(self, key: str, prefix: str = "") -> str:
        spec = self.topics.get(key)
        if spec is not None and spec.name is not None:
            return f"{prefix}{spec.name}"
        return f"{prefix}{self.domain}.{key}"

    def transactional_id_prefix(self, service: str) -> str:
        """An app's transactional-id prefix, before any PR prefix."""
        return self.services[service].transactional_id_prefix or f"{self.domain}.{service}."

    def consumer_group(self, service: str) -> str:
        """The service's group (or, per instance, the stem of its groups), before any PR prefix.
        A Streams application's group is its application.id."""
        spec = self.services[service]
        if spec.kind == "streams":
            return spec.application_id or f"{self.domain}.{service}"
        return spec.consumer_group or f"{self.domain}.{service}"

    def connect_topic_keys(self, service: str) -> dict[str, str]:
        """A Connect worker's config/offset/status topics, as topic keys ("<service>.connect-...")."""
        if self.services[service].kind != "connect":
            return {}
        return {role: f"{service}.{suffix}" for role, suffix in CONNECT_TOPICS.items()}

    @property
    def all_topics(self) -> dict[str, TopicSpec]:
        """The declared topics and the ones the platform makes for Connect workers (compacted;
        the config topic must have one partition)."""
        topics = dict(self.topics)
        for service in self.services:
            for role, key in self.connect_topic_keys(service).items():
                topics[key] = TopicSpec(
                    partitions=1 if role == "config" else None,
                    cleanup="compact",
                    description=f"Kafka Connect {role} storage of the workers of service '{service}'",
                )
        return topics


def load_topology(path: Path) -> Topology:
    return topology_from_data(load_yaml_file(path), path.name)


def read_topology(path: Path) -> Checked[Topology]:
    """topology.yaml checked as far as it allows (see `checked_topology`)."""
    try:
        data = load_yaml_file(path)
    except ConfigError as exc:
        return Checked(None, exc.problems, [])
    return checked_topology(data, path.name)


def checked_topology(data: Any, file: str = "topology.yaml") -> Checked[Topology]:
    """The schema, then the rules across keys, in one run: with unknown keys set aside when
    they are the schema's only problems, less what could follow from setting them aside."""
    schema = validate_setting_aside(Topology, data, file)
    if schema.value is None:
        return schema
    rules = without_follow_ons(check_topology(schema.value, file).problems, schema.set_aside)
    return Checked(schema.value, [*schema.problems, *rules], schema.set_aside)


def check_topology(topology: Topology, file: str) -> ProblemCollector:
    """Rules that span several keys; pydantic has already checked each key's shape."""
    problems = ProblemCollector(file)
    if problem := dns_label_problem(topology.domain, max_length=40):
        problems.add(("domain",), problem)

    seen_collisions: dict[str, str] = {}
    seen_env_vars: dict[str, str] = {}
    for key in topology.all_topics:
        name = topology.topic_name(key)
        if problem := topic_name_problem(name):
            problems.add(("topics", key), f"topic name {problem}")
        clash = seen_collisions.setdefault(collision_key(name), key)
        if clash != key:
            same = name == topology.topic_name(clash)
            problems.add(
                ("topics", key),
                f"names '{name}', which topic '{clash}' already has"
                if same
                else f"collides with topic '{clash}': Kafka treats '.' and '_' as the same",
                reads=[("topics", clash)],
            )
        env_clash = seen_env_vars.setdefault(env_var_suffix(key), key)
        if env_clash != key and clash == key:
            problems.add(
                ("topics", key),
                f"its env var KAFKA_TOPIC_{env_var_suffix(key)} would collide with topic '{env_clash}'",
            )

    producers: set[str] = set()
    groups: dict[str, str] = {}
    for name, service in topology.services.items():
        path = ("services", name)
        if problem := dns_label_problem(name, max_length=40):
            problems.add(path, f"service name {problem}")
        if name in RESERVED_SERVICE_NAMES:
            problems.add(path, f"'{name}' is the platform's own identity; choose another service name")
        if not service.produces and not service.consumes and service.kind != "connect":
            problems.add(path, "declares neither produces nor consumes")
        for role in ("produces", "consumes"):
            topics: list[str] = getattr(service, role)
            for index, topic in enumerate(topics):
                if topic not in topology.topics:
                    problems.add((*path, role, index), _unknown_topic(topic, topology))
                if topics.index(topic) != index:
                    problems.add((*path, role, index), f"topic '{topic}' is listed twice")
        producers.update(service.produces)
        if service.consumer_group is not None:
            if not service.consumes:
                problems.add((*path, "consumer_group"), "set, but the service consumes nothing")
            if problem := topic_name_problem(service.consumer_group):
                problems.add((*path, "consumer_group"), f"group name {problem}")
        if service.transactional and not service.produces:
            problems.add((*path, "transactional"), "a transactional service must produce a topic")
        if service.consumer_group_per_instance and not service.consumes:
            problems.add((*path, "consumer_group_per_instance"), "set, but the service consumes nothing")
        _check_kind(topology, name, problems)
        if service.consumes or service.kind == "connect":
            group = topology.consumer_group(name)
            owner = groups.setdefault(group, name)
            if owner != name:
                problems.add(
                    (*path, "consumer_group"),
                    f"group '{group}' is already used by service '{owner}'; "
                    "shared groups split messages between services",
                    reads=[("services", owner)],
                )

    for name, event in topology.events.items():
        _check_event(name, event, topology, producers, problems)
    return problems


def _check_kind(topology: Topology, name: str, problems: ProblemCollector) -> None:
    """Fields that only make sense for some kinds of service."""
    path = ("services", name)
    service = topology.services[name]
    if service.application_id is not None and service.kind != "streams":
        problems.add((*path, "application_id"), f"only for kind streams (kind is '{service.kind}')")
    if service.kind == "streams":
        if service.consumer_group is not None:
            problems.add((*path, "consumer_group"), "a Streams application's group is its application_id")
        if service.consumer_group_per_instance:
            problems.add(
                (*path, "consumer_group_per_instance"), "not for kind streams: its instances share a group"
            )
        if not service.consumes:
            problems.add((*path, "consumes"), "a Streams application reads at least one topic")
        if service.application_id is not None and (problem := topic_name_problem(service.application_id)):
            problems.add((*path, "application_id"), f"application.id {problem}")
    if service.kind == "connect":
        if service.consumer_group_per_instance:
            problems.add(
                (*path, "consumer_group_per_instance"), "not for kind connect: the workers share a group"
            )
        if service.transactional:
            problems.add((*path, "transactional"), "exactly-once source connectors are not supported here")
        for suffix in CONNECT_TOPICS.values():
            if f"{name}.{suffix}" in topology.topics:
                problems.add(
                    ("topics", f"{name}.{suffix}"),
                    f"is the topic the platform makes for Connect service '{name}'; choose another key",
                    reads=[path],
                )
    if service.transactional_id_prefix is not None:
        if service.kind != "app" or not service.transactional:
            problems.add(
                (*path, "transactional_id_prefix"),
                "only for a transactional service of kind app (a Streams app's follow its application_id)",
            )
        elif problem := topic_name_problem(service.transactional_id_prefix.rstrip(".-_") or "."):
            problems.add((*path, "transactional_id_prefix"), f"transactional id prefix {problem}")


def _check_event(
    name: str,
    event: EventSpec,
    topology: Topology,
    producers: set[str],
    problems: ProblemCollector,
) -> None:
    path = ("events", name)
    if event.transport in TOPIC_TRANSPORTS and event.topic is None:
        problems.add((*path, "topic"), f"transport '{event.transport}' needs a topic")
    if event.transport in CHANNEL_TRANSPORTS and event.channel is None:
        problems.add((*path, "channel"), f"transport '{event.transport}' needs a redis channel")
    if event.topic is not None:
        if event.topic not in topology.topics:
            problems.add((*path, "topic"), _unknown_topic(event.topic, topology))
        elif event.topic not in producers and producers <= set(topology.topics):
            # (A service producing an unknown topic, refused above, may be this one misspelt.)
            problems.add(
                (*path, "topic"), f"no service produces topic '{event.topic}'", reads=[("services",)]
            )
        elif event.key is None and "compact" in topology.topics[event.topic].cleanup:
            field = topology.topics[event.topic].key or "id"
            problems.add(
                (*path, "key"),
                f"topic '{event.topic}' is compacted, and a compacted topic refuses every record "
                f'without a key: give the event one, e.g. key: "{{{field}}}"',
                reads=[("topics", event.topic)],
            )
    if event.schema_file is not None and event.topic is None:
        problems.add(
            (*path, "schema"), "a schema is registered for a topic's records; this event has no topic"
        )
    if event.key is not None:
        if event.topic is None:
            problems.add((*path, "key"), "a partition key needs a topic")
        elif problem := key_template_problem(event.key):
            problems.add((*path, "key"), problem)


def key_template_fields(template: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]


def key_template_problem(template: str) -> str | None:
    """Partition key templates are ``user:{user_id}``: named fields only."""
    try:
        fields = key_template_fields(template)
    except ValueError as exc:
        return f"malformed key template '{template}': {exc}"
    for field in fields:
        if not field.isidentifier():
            return f"key template field '{{{field}}}' must be a plain field name"
    return None


def _unknown_topic(topic: str, topology: Topology) -> str:
    known = ", ".join(sorted(topology.topics))
    return f"unknown topic '{topic}'{did_you_mean(topic, topology.topics)}; topics in the topology: {known}"


def topology_from_data(data: Any, file: str = "topology.yaml") -> Topology:
    """Validate already-parsed data (tests, generated benchmarks, a base ref's file)."""
    checked = checked_topology(data, file)
    if checked.value is None or checked.problems:
        raise ConfigError(checked.problems)
    return checked.value
