"""Schema Registry subjects of a stack: each event's schema under the subject its naming
strategy gives on this stack's topic, with the compatibility level the stack keeps and the
services that write and read it."""

from __future__ import annotations

from collections.abc import Mapping

from infra.model.errors import Problem, ProblemCollector
from infra.model.event_schemas import EventSchema
from infra.model.settings import REGISTRY_PROVIDERS, StackSettings
from infra.model.stacks import SCHEMA_REGISTRY_PASSWORD_KEY, TOPOLOGY_FILE, StackContext
from infra.model.topology import Topology
from infra.plan.model import (
    LOCAL_REGISTRY_URL,
    REGISTRY_ENDPOINT_TOKEN,
    SCHEMA_REGISTRY_PASSWORD_ENV,
    SCHEMA_REGISTRY_URL_ENV,
    SCHEMA_REGISTRY_USERNAME_ENV,
    PlannedTopic,
    SchemaRegistryPlan,
    SubjectPlan,
)


def subject_name(strategy: str, topic: str, record_name: str) -> str:
    """Confluent's TopicNameStrategy, RecordNameStrategy and TopicRecordNameStrategy (values)."""
    if strategy == "topic":
        return f"{topic}-value"
    if strategy == "record":
        return record_name
    return f"{topic}-{record_name}"


def plan_subjects(
    topology: Topology,
    settings: StackSettings,
    schemas: Mapping[str, EventSchema],
    topics: Mapping[str, PlannedTopic],
    *,
    stack_file: str,
    name_prefix: str,
) -> tuple[list[SubjectPlan], list[ProblemCollector]]:
    """The stack's subjects, sorted; problems: events whose schemas would share a subject, and
    per-subject levels for subjects the stack does not have."""
    in_topology = ProblemCollector(TOPOLOGY_FILE)
    in_stack = ProblemCollector(stack_file, prefix=("settings",))
    grouped: dict[str, list[EventSchema]] = {}
    for name, schema in sorted(schemas.items()):
        topic_key = topology.events[name].topic
        if topic_key is None or topic_key not in topics:
            continue  # refused by the topology's own checks
        subject = subject_name(topology.subject_name_strategy, topics[topic_key].name, schema.record_name)
        grouped.setdefault(subject, []).append(schema)
    overrides = settings.schemas.subjects
    known = set(grouped)
    unreadable = any(e.schema_file and name not in schemas for name, e in topology.events.items())
    for subject in overrides if not unreadable else ():  # a schema that failed names no subject yet
        if subject not in known and f"{name_prefix}{subject}" not in known:
            shown = ", ".join(sorted(known)) or "none"
            in_stack.add(
                ("schemas", "subjects", subject), f"not a subject of this stack (its subjects: {shown})"
            )
    subjects: list[SubjectPlan] = []
    for subject, members in sorted(grouped.items()):
        first = members[0]
        for other in members[1:]:
            if other.text != first.text:
                in_topology.add(
                    ("events", other.event, "schema"),
                    f"subject '{subject}' already holds event '{first.event}''s schema ({first.path}); "
                    "one subject keeps one schema: give both events one schema, or set "
                    "subject_name_strategy: record (or topic_record)",
                )
        topic_key = topology.events[first.event].topic
        assert topic_key is not None
        level = overrides.get(subject) or overrides.get(subject.removeprefix(name_prefix))
        subjects.append(
            SubjectPlan(
                subject=subject,
                format=first.format,
                definition=first.text,
                schema_file=first.path,
                record_name=first.record_name,
                topic=topics[topic_key].name,
                events=[member.event for member in members],
                compatibility=level or settings.schemas.compatibility,
                producers=sorted(n for n, s in topology.services.items() if topic_key in s.produces),
                consumers=sorted(n for n, s in topology.services.items() if topic_key in s.consumes),
            )
        )
    return subjects, [in_topology, in_stack]


def preview_shares_subjects(stack: StackContext, strategy: str) -> bool:
    """A pr-<n> preview under the `record` strategy: a subject named by its record alone has no
    topic to carry the preview's prefix, so it is its base stack's own subject (and a client's
    RecordNameStrategy names it so); the preview must not register it."""
    return stack.is_preview and strategy == "record"


def plan_registry(
    stack: StackContext, subjects: list[SubjectPlan], strategy: str
) -> tuple[SchemaRegistryPlan | None, ProblemCollector]:
    """The registry the stack's subjects go to; problems: adopted subjects the plan lacks.
    A stack with subjects and no registry registers nothing (its schemas are still reviewed by
    `diff`); `validate` warns about it, as it does for a preview sharing its base's subjects."""
    collector = ProblemCollector(stack.file, prefix=("settings", "adopt", "subjects"))
    kafka = stack.settings.kafka
    if kafka.provider == "local":
        return _local_registry(kafka.local_or_default.schema_registry_port, subjects), collector
    if preview_shares_subjects(stack, strategy):
        return None, collector
    registry = stack.settings.schemas.registry
    adopt = stack.settings.adopt.subjects
    if registry is None:
        for index, _ in enumerate(adopt):
            collector.add((index,), "needs settings.schemas.registry, the registry holding the subject")
        return None, collector
    names = {subject.subject for subject in subjects}
    for index, name in enumerate(adopt):
        if name not in names:
            shown = ", ".join(sorted(names)) or "none"
            collector.add((index,), f"'{name}' is not a subject of this stack's plan (its subjects: {shown})")
    return (
        SchemaRegistryPlan(
            url=registry.url.rstrip("/"),
            username=registry.username,
            password_config=SCHEMA_REGISTRY_PASSWORD_KEY if registry.username else None,
            # A pr-<n> preview copies its base stack's settings, whose subjects it does not share.
            adopt=[] if stack.is_preview else sorted(set(adopt)),
        ),
        collector,
    )


def _local_registry(host_port: int, subjects: list[SubjectPlan]) -> SchemaRegistryPlan | None:
    """The local stack's own registry, run by `local up` (outside Pulumi) when it has subjects:
    services in the compose network reach Redpanda's by name, processes on the host by port."""
    if not subjects:
        return None
    return SchemaRegistryPlan(
        url=LOCAL_REGISTRY_URL,
        host_url=f"http://localhost:{host_port}",
        username=None,
        password_config=None,
    )


def unregistered_subjects(
    stack: StackContext, subjects: list[SubjectPlan], registry: SchemaRegistryPlan | None, strategy: str
) -> list[Problem]:
    """A warning where the stack has subjects a registry could hold and names none, or a
    preview leaves them unregistered because they are its base stack's."""
    if registry is not None or not subjects or stack.settings.kafka.provider not in REGISTRY_PROVIDERS:
        return []
    if preview_shares_subjects(stack, strategy) and stack.settings.schemas.registry is not None:
        collector = ProblemCollector(TOPOLOGY_FILE)
        collector.add(
            ("subject_name_strategy",),
            f"record: stack '{stack.name}' registers none of its {len(subjects)} subject(s) and its "
            f"services get no {SCHEMA_REGISTRY_URL_ENV}: a subject named by its record alone (e.g. "
            f"'{subjects[0].subject}') has no topic to carry the prefix '{stack.name_prefix}', so it "
            "is the base stack's own; `diff` still judges the preview's schemas",
        )
        return collector.problems
    collector = ProblemCollector(stack.file, prefix=("settings", "schemas"))
    collector.add(
        ("registry",),
        f"not set: the stack's {len(subjects)} subject(s) are reviewed by `diff` but registered nowhere",
    )
    return collector.problems


def registry_env(
    service: str, subjects: list[SubjectPlan], registry: SchemaRegistryPlan | None, stack: StackContext
) -> tuple[dict[str, str], dict[str, str]]:
    """(ConfigMap env, Secret env descriptions) of a service that writes or reads a subject. On
    Confluent Cloud: the environment's registry, with the service's own registry key (a pr-<n>
    preview registers no subjects, so its services get none)."""
    uses = any(service in subject.producers or service in subject.consumers for subject in subjects)
    if stack.settings.kafka.provider == "confluent" and uses and not stack.is_preview:
        return {SCHEMA_REGISTRY_URL_ENV: REGISTRY_ENDPOINT_TOKEN}, {
            SCHEMA_REGISTRY_USERNAME_ENV: "the service's own Schema Registry API key (Confluent Cloud)",
            SCHEMA_REGISTRY_PASSWORD_ENV: "that API key's secret",
        }
    if registry is None or not uses:
        return {}, {}
    secret_env: dict[str, str] = {}
    if registry.username is not None:
        secret_env = {
            SCHEMA_REGISTRY_USERNAME_ENV: "registry user (settings.schemas.registry.username)",
            SCHEMA_REGISTRY_PASSWORD_ENV: f"password from secret config {registry.password_config}",
        }
    return {SCHEMA_REGISTRY_URL_ENV: registry.url}, secret_env
