"""Bad input: every problem names its file and key path, and all are reported at once."""

from __future__ import annotations

from typing import Any

import pytest

from infra import cli
from infra.model.errors import ConfigError
from tests.project_files import ENCRYPTED, Edit, Project


def _set(path: str, value: Any) -> Edit:
    """An edit that sets a dotted path; `|` separates keys that themselves contain dots."""
    keys = path.split("|")

    def edit(data: dict[str, Any]) -> None:
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value

    return edit


def _delete(path: str) -> Edit:
    keys = path.split("|")

    def edit(data: dict[str, Any]) -> None:
        node = data
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return edit


def _both(*edits: Edit) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        for one in edits:
            one(data)

    return edit


def _rename(path: str, new: str) -> Edit:
    """An edit that renames the last key of a path (as in `_set`), keeping its value."""
    keys = path.split("|")

    def edit(data: dict[str, Any]) -> None:
        node = data
        for key in keys[:-1]:
            node = node[key]
        node[new] = node.pop(keys[-1])

    return edit


T = "topology.yaml"
DEV = "Pulumi.dev.yaml"
PROD = "Pulumi.prod.yaml"
LOCAL = "Pulumi.local.yaml"

MSK: dict[str, Any] = {
    "provider": "msk",
    "msk": {
        "kafka_version": "3.6.0",
        "broker_count": 3,
        "instance_type": "kafka.m5.large",
        "subnet_ids": ["subnet-a", "subnet-b"],
        "security_group_ids": ["sg-1"],
    },
}

# (id, file to edit, edit, stack to plan, expected text: file + key path + message)
CASES: list[tuple[str, str, Edit, str, str]] = [
    (
        "unknown topic in produces",
        T,
        _set("services|api|produces", ["user.events", "user.evnts"]),
        "dev",
        "topology.yaml: services.api.produces[1]: unknown topic 'user.evnts'",
    ),
    (
        "unknown topic in consumes",
        T,
        _set("services|guardian|consumes", ["nope"]),
        "dev",
        "topology.yaml: services.guardian.consumes[0]: unknown topic 'nope'",
    ),
    (
        "unknown topic in event",
        T,
        _set("events|user.mood.created|topic", "user.moods"),
        "dev",
        "topology.yaml: events.\"user.mood.created\".topic: unknown topic 'user.moods'",
    ),
    (
        "dot/underscore collision",
        T,
        _set("topics|user_events", {"partitions": 1}),
        "dev",
        "topology.yaml: topics.user_events: collides with topic 'user.events'",
    ),
    (
        "invalid topic chars",
        T,
        _set("topics|user events!", {"partitions": 1}),
        "dev",
        'topology.yaml: topics."user events!": topic name',
    ),
    (
        "topic name too long",
        T,
        _set("topics|" + "x" * 250, {"partitions": 1}),
        "dev",
        "is 258 characters; Kafka allows 249",
    ),
    (
        "partitions below one",
        T,
        _set("topics|user.events|partitions", 0),
        "dev",
        'topology.yaml: topics."user.events".partitions: must be >= 1',
    ),
    (
        "negative retention",
        T,
        _set("topics|user.events|retention", "-3d"),
        "dev",
        "topology.yaml: topics.\"user.events\".retention: '-3d' is negative",
    ),
    (
        "malformed retention",
        T,
        _set("topics|user.events|retention", "7 days"),
        "dev",
        "topology.yaml: topics.\"user.events\".retention: '7 days' is not a duration",
    ),
    (
        "unknown kafka topic config",
        T,
        _set("topics|user.events|config", {"retention.msec": 5}),
        "dev",
        "topology.yaml: topics.\"user.events\".config: 'retention.msec' is not a documented Kafka",
    ),
    (
        "modelled config set twice",
        T,
        _set("topics|user.events|config", {"cleanup.policy": "compact"}),
        "dev",
        "set 'cleanup.policy' with cleanup, not in config",
    ),
    (
        "unknown cleanup policy",
        T,
        _set("topics|user.events|cleanup", "archive"),
        "dev",
        "topology.yaml: topics.\"user.events\".cleanup: 'archive' is not allowed",
    ),
    (
        "unknown transport",
        T,
        _set("events|user.mood.created|transport", "carrier-pigeon"),
        "dev",
        "topology.yaml: events.\"user.mood.created\".transport: 'carrier-pigeon' is not allowed",
    ),
    (
        "typo in service key",
        T,
        _rename("services|api|produces", "produce"),
        "dev",
        "topology.yaml: services.api.produce: unknown key (did you mean 'produces'?)",
    ),
    (
        "typo in top-level key",
        T,
        _set("topic", {}),
        "dev",
        "topology.yaml: topic: unknown key (did you mean 'topics'?)",
    ),
    (
        "service uses no topic",
        T,
        _set("services|idle", {}),
        "dev",
        "topology.yaml: services.idle: declares neither produces nor consumes",
    ),
    (
        "bad service name",
        T,
        _set("services|Billing_Svc", {"consumes": ["user.events"]}),
        "dev",
        "topology.yaml: services.Billing_Svc: service name",
    ),
    (
        "topic listed twice",
        T,
        _set("services|guardian|consumes", ["guardian.requests", "guardian.requests"]),
        "dev",
        "topology.yaml: services.guardian.consumes[1]: topic 'guardian.requests' is listed twice",
    ),
    (
        "shared consumer group",
        T,
        _set("services|guardian|consumer_group", "aura360.api"),
        "dev",
        "group 'aura360.api' is already used by service 'api'",
    ),
    (
        "kafka event without topic",
        T,
        _set("events|orphan", {"transport": "kafka"}),
        "dev",
        "topology.yaml: events.orphan.topic: transport 'kafka' needs a topic",
    ),
    (
        "redis event without channel",
        T,
        _set("events|ping", {"transport": "redis"}),
        "dev",
        "topology.yaml: events.ping.channel: transport 'redis' needs a redis channel",
    ),
    (
        "malformed key template",
        T,
        _set("events|user.mood.created|key", "user:{user_id"),
        "dev",
        'topology.yaml: events."user.mood.created".key: malformed key template',
    ),
    (
        "transactional without produces",
        T,
        _set("services|vectordb-ingest|transactional", True),
        "dev",
        "topology.yaml: services.vectordb-ingest.transactional: a transactional service must produce",
    ),
    (
        "env var collision",
        T,
        _set("topics|user-events", {"partitions": 1}),
        "dev",
        "KAFKA_TOPIC_USER_EVENTS would collide with topic 'user.events'",
    ),
    (
        "prod replication below three",
        PROD,
        _set("topics|overrides|user.events|replication", 2),
        "prod",
        'Pulumi.prod.yaml: settings.topics.overrides."user.events".replication: Confluent Cloud always',
    ),
    (
        "prod min isr below two",
        PROD,
        _set("topics|defaults|min_insync_replicas", 1),
        "prod",
        "Pulumi.prod.yaml: settings.topics.defaults.min_insync_replicas: must be >= 2 in production",
    ),
    (
        "override partitions below one",
        PROD,
        _set("topics|overrides|user.events|partitions", 0),
        "prod",
        'Pulumi.prod.yaml: settings.topics.overrides."user.events".partitions: must be >= 1',
    ),
    (
        "override of unknown topic",
        PROD,
        _set("topics|overrides|user.evnts", {"partitions": 3}),
        "prod",
        'Pulumi.prod.yaml: settings.topics.overrides."user.evnts": unknown topic',
    ),
    (
        "replication above local broker count",
        LOCAL,
        _set("topics|defaults|replication", 3),
        "local",
        "Pulumi.local.yaml: settings.topics.defaults.replication: must be <= 1 for provider 'local'",
    ),
    (
        "unknown backend",
        DEV,
        _set("messaging|backend", "rabbitmq"),
        "dev",
        "Pulumi.dev.yaml: settings.messaging.backend: 'rabbitmq' is not allowed; "
        "use one of 'kafka', 'celery' or 'disabled'",
    ),
    (
        "unknown provider",
        DEV,
        _set("kafka|provider", "kinesis"),
        "dev",
        "Pulumi.dev.yaml: settings.kafka.provider: 'kinesis' is not allowed",
    ),
    (
        "typo in settings",
        DEV,
        _set("mesaging", {}),
        "dev",
        "Pulumi.dev.yaml: settings.mesaging: unknown key (did you mean 'messaging'?)",
    ),
    (
        "routing for unknown event",
        DEV,
        _set("messaging|routing", {"user.mood.deleted": "kafka"}),
        "dev",
        'Pulumi.dev.yaml: settings.messaging.routing."user.mood.deleted": unknown event',
    ),
    (
        "routing needs channel",
        DEV,
        _set("messaging|routing", {"user.mood.created": "redis"}),
        "dev",
        "needs a redis channel, and event 'user.mood.created' declares none",
    ),
    (
        "dual write with disabled backend",
        DEV,
        _set("messaging", {"backend": "disabled", "dual_write": True}),
        "dev",
        "Pulumi.dev.yaml: settings.messaging.dual_write: dual write needs a backend",
    ),
    (
        "deployment for unknown service",
        DEV,
        _set("kubernetes|deployments|billing", "billing"),
        "dev",
        "Pulumi.dev.yaml: settings.kubernetes.deployments.billing: unknown service 'billing'",
    ),
    (
        "missing namespace",
        DEV,
        _delete("kubernetes|namespace"),
        "dev",
        "Pulumi.dev.yaml: settings.kubernetes.namespace: required key is missing",
    ),
    (
        "dedicated without ckus",
        PROD,
        _set("kafka|confluent|tier", "dedicated"),
        "prod",
        "Pulumi.prod.yaml: settings.kafka.confluent.ckus: a dedicated cluster needs ckus",
    ),
    (
        "provider section mismatch",
        DEV,
        _set("kafka", {"provider": "confluent", "msk": MSK["msk"]}),
        "dev",
        "Pulumi.dev.yaml: settings.kafka.confluent: required when provider is 'confluent'",
    ),
    (
        "prod cannot unprotect",
        PROD,
        _set("protection|protect", False),
        "prod",
        "Pulumi.prod.yaml: settings.protection.protect: a production stack cannot turn protection off",
    ),
    (
        "msk brokers not a multiple of subnets",
        DEV,
        _set("kafka", {**MSK, "msk": {**MSK["msk"], "broker_count": 3}}),
        "dev",
        "Pulumi.dev.yaml: settings.kafka.msk.broker_count: 3 brokers cannot be spread evenly over 2 subnets",
    ),
    (
        "msk version format",
        DEV,
        _set("kafka", {**MSK, "msk": {**MSK["msk"], "kafka_version": "latest", "broker_count": 2}}),
        "dev",
        "Pulumi.dev.yaml: settings.kafka.msk.kafka_version: 'latest' is not an MSK Kafka version",
    ),
    (
        "msk serverless rejected",
        DEV,
        _set("kafka", {**MSK, "msk": {**MSK["msk"], "serverless": True, "broker_count": 2}}),
        "dev",
        "Pulumi.dev.yaml: settings.kafka.msk.serverless: MSK Serverless supports only IAM authentication",
    ),
    (
        "partitions not a number",
        PROD,
        _set("topics|defaults|partitions", "many"),
        "prod",
        "Pulumi.prod.yaml: settings.topics.defaults.partitions: must be a whole number (got 'many')",
    ),
    (
        "confluent display name over 64 characters",
        T,
        _both(_set("domain", "d" * 30), _set("services|" + "s" * 30, {"consumes": ["user.events"]})),
        "prod",
        "Pulumi.prod.yaml: settings.kafka.confluent: service account '"
        + "d" * 30
        + ".prod."
        + "s" * 30
        + "' is 66 characters; Confluent Cloud allows 64: shorten the domain, the service or the stack name",
    ),
    (
        "display name of the longest preview too long",
        T,
        _set("domain", "d" * 33),
        "dev",
        "(in preview stack pr-999999999) is 65 characters; Confluent Cloud allows 64",
    ),
    (
        "reserved service name",
        T,
        _set("services|platform-admin", {"consumes": ["user.events"]}),
        "dev",
        "topology.yaml: services.platform-admin: 'platform-admin' is the platform's own identity",
    ),
    (
        "group under another service's per-instance prefix",
        T,
        _both(
            _set("services|api|consumer_group_per_instance", True),
            _set("services|vectordb-ingest|consumer_group", "aura360.api.ingest"),
        ),
        "dev",
        "topology.yaml: services.api: its grant on everything under 'aura360.api.' would also reach "
        "group 'aura360.api.ingest' of service 'vectordb-ingest'; rename one of them",
    ),
    (
        "streams topic prefix reaches a declared topic",
        T,
        _both(
            _set("services|context-aggregator|kind", "streams"),
            _set("topics|context-aggregator-x", {"partitions": 1}),
        ),
        "dev",
        "topology.yaml: services.context-aggregator: its grant on everything under "
        "'aura360.context-aggregator-' would also reach topic 'aura360.context-aggregator-x'; "
        "rename one of them",
    ),
    (
        "application_id on an app",
        T,
        _set("services|api|application_id", "api-app"),
        "dev",
        "topology.yaml: services.api.application_id: only for kind streams (kind is 'app')",
    ),
    (
        "streams app that reads nothing",
        T,
        _set("services|guardian", {"kind": "streams", "produces": ["guardian.responses"]}),
        "dev",
        "topology.yaml: services.guardian.consumes: a Streams application reads at least one topic",
    ),
    (
        "streams app with its own group name",
        T,
        _both(
            _set("services|context-aggregator|kind", "streams"),
            _set("services|context-aggregator|consumer_group", "aggregators"),
        ),
        "dev",
        "topology.yaml: services.context-aggregator.consumer_group: a Streams application's group is its "
        "application_id",
    ),
    (
        "transactional connect worker",
        T,
        _both(_set("services|guardian|kind", "connect"), _set("services|guardian|transactional", True)),
        "dev",
        "topology.yaml: services.guardian.transactional: exactly-once source connectors are not "
        "supported here",
    ),
    (
        "unknown service kind",
        T,
        _set("services|api|kind", "ksql"),
        "dev",
        "topology.yaml: services.api.kind: ",
    ),
    (
        "declared topic where a Connect worker's is",
        T,
        _both(
            _set("services|guardian|kind", "connect"),
            _set("topics|guardian.connect-offsets", {"partitions": 1}),
        ),
        "dev",
        'topology.yaml: topics."guardian.connect-offsets": is the topic the platform makes for Connect '
        "service 'guardian'; choose another key",
    ),
    (
        "exact name with illegal characters",
        T,
        _set("topics|prospects", {"name": "nexus prospects!"}),
        "dev",
        "topology.yaml: topics.prospects: topic name 'nexus prospects!' may only contain",
    ),
    (
        "two keys with the same exact name",
        T,
        _set("topics|events-again", {"name": "aura360.user.events"}),
        "dev",
        "topology.yaml: topics.events-again: names 'aura360.user.events', which topic 'user.events' "
        "already has",
    ),
    (
        "exact name colliding by dot and underscore",
        T,
        _set("topics|legacy", {"name": "aura360.user_events"}),
        "dev",
        "topology.yaml: topics.legacy: collides with topic 'user.events': Kafka treats '.' and '_' as "
        "the same",
    ),
    (
        "transactional id prefix on a non-transactional service",
        T,
        _set("services|guardian|transactional_id_prefix", "guardian-"),
        "dev",
        "topology.yaml: services.guardian.transactional_id_prefix: only for a transactional service of "
        "kind app",
    ),
    (
        "events routed to Redis without a Redis",
        DEV,
        _set("messaging|routing", {"user.mood.created": "both"}),
        "dev",
        "Pulumi.dev.yaml: settings.messaging.redis: required: events user.mood.created go to Redis in "
        "this stack",
    ),
    (
        "backend of an unknown service",
        DEV,
        _set("messaging|services", {"mailer": {"backend": "celery"}}),
        "dev",
        "Pulumi.dev.yaml: settings.messaging.services.mailer: unknown service 'mailer'; known: api, "
        "context-aggregator, context-vectorizer, guardian, vectordb-ingest",
    ),
    (
        "a service's celery backend without a broker",
        PROD,
        _set("messaging|services", {"guardian": {"backend": "celery"}}),
        "prod",
        "Pulumi.prod.yaml: settings.messaging.celery_broker: required: "
        "messaging.services.guardian.backend is 'celery'",
    ),
    (
        "a service's dual write with a disabled backend",
        DEV,
        _set("messaging", {"backend": "disabled", "services": {"guardian": {"dual_write": True}}}),
        "dev",
        "Pulumi.dev.yaml: settings.messaging.services.guardian.dual_write: dual write needs a backend; "
        "service 'guardian' has 'disabled'",
    ),
    (
        "a service's disabled backend under the stack's dual write",
        DEV,
        _set("messaging|services", {"guardian": {"backend": "disabled"}}),
        "dev",
        "Pulumi.dev.yaml: settings.messaging.services.guardian.backend: 'disabled' leaves dual write "
        "(messaging.dual_write: true) nothing to write to",
    ),
    (
        "a typo in a service's messaging",
        DEV,
        _set("messaging|services", {"guardian": {"bakend": "celery"}}),
        "dev",
        "Pulumi.dev.yaml: settings.messaging.services.guardian.bakend: unknown key (did you mean "
        "'backend'?); allowed keys: backend, dual_write",
    ),
    (
        "celery backend without a broker",
        PROD,
        _set("messaging|backend", "celery"),
        "prod",
        "Pulumi.prod.yaml: settings.messaging.celery_broker: required: messaging.backend is 'celery'",
    ),
    (
        "one service's dual write without a Celery broker",
        PROD,
        _set("messaging|services", {"guardian": {"dual_write": True}}),
        "prod",
        "Pulumi.prod.yaml: settings.messaging.celery_broker: required: "
        "messaging.services.guardian.dual_write writes every event to Kafka and to Celery",
    ),
    (
        "dual write without a Celery broker",
        PROD,
        _set("messaging|dual_write", True),
        "prod",
        "Pulumi.prod.yaml: settings.messaging.celery_broker: required: messaging.dual_write writes every "
        "event to Kafka and to Celery",
    ),
    (
        "redis URL with a password in plain text",
        PROD,
        _set(
            "messaging|redis", {"url": "redis://:hunter2@redis.internal:6379/0"}
        ),  # pragma: allowlist secret
        "prod",
        "Pulumi.prod.yaml: settings.messaging.redis.url: holds a credential in plain text: remove it, run "
        "`pulumi config set --secret kafka-platform:redisUrl <url>` and set `secret: true`",
    ),
    (
        "celery broker URL of an unknown kind",
        PROD,
        _set("messaging|celery_broker", {"url": "http://broker.internal"}),
        "prod",
        "Pulumi.prod.yaml: settings.messaging.celery_broker.url: 'http://broker.internal' is not a redis:// "
        "or rediss:// or amqp:// or amqps:// or sqs:// URL",
    ),
    (
        "redis given both ways",
        PROD,
        _set("messaging|redis", {"url": "redis://redis.internal:6379/0", "secret": True}),
        "prod",
        "Pulumi.prod.yaml: settings.messaging.redis: give either `url` or `secret: true`",
    ),
    (
        "secret redis URL not set",
        PROD,
        _set("messaging|redis", {"secret": True}),
        "prod",
        "Pulumi.prod.yaml: config.kafka-platform:redisUrl: required by settings.messaging.redis.secret",
    ),
    (
        "a schema registry on a Confluent stack",
        PROD,
        _set("schemas|registry", {"url": "https://registry.internal"}),
        "prod",
        "Pulumi.prod.yaml: settings.schemas.registry: only used when provider is kafka or msk",
    ),
    (
        "unknown acls mode",
        PROD,
        _set("acls|mode", "all"),
        "prod",
        "Pulumi.prod.yaml: settings.acls.mode: ",
    ),
    (
        "acls limit below one",
        PROD,
        _set("acls|limit", 0),
        "prod",
        "Pulumi.prod.yaml: settings.acls.limit: ",
    ),
    (
        "rbac on a basic cluster",
        DEV,
        _set("acls|mode", "rbac"),
        "dev",
        "Pulumi.dev.yaml: settings.acls.mode: Confluent offers the Kafka resource roles",
    ),
    (
        "over the ACL limit",
        PROD,
        _set("acls|limit", 10),
        "prod",
        "Pulumi.prod.yaml: settings.acls.mode: the literal plan puts 18 ACLs on the cluster; "
        "settings.acls.limit takes 10",
    ),
    (
        "per-instance groups without consuming",
        T,
        _set(
            "services|vectordb-ingest", {"produces": ["vectordb.ingest"], "consumer_group_per_instance": True}
        ),
        "dev",
        "topology.yaml: services.vectordb-ingest.consumer_group_per_instance: set, but the service "
        "consumes nothing",
    ),
    (
        "msk public access during acl bootstrap",
        DEV,
        _set(
            "kafka",
            {**MSK, "msk": {**MSK["msk"], "broker_count": 2, "access": "public", "acl_bootstrap": True}},
        ),
        "dev",
        "Pulumi.dev.yaml: settings.kafka.msk.access: MSK turns on public access only while",
    ),
    (
        "msk access mode",
        DEV,
        _set("kafka", {**MSK, "msk": {**MSK["msk"], "broker_count": 2, "access": "internet"}}),
        "dev",
        "Pulumi.dev.yaml: settings.kafka.msk.access: 'internet' is not allowed; use one of 'vpc' or 'public'",
    ),
    (
        "kafka provider without its cluster section",
        DEV,
        _set("kafka", {"provider": "kafka"}),
        "dev",
        "Pulumi.dev.yaml: settings.kafka.cluster: required when provider is 'kafka'",
    ),
    (
        "kafka provider bootstrap address",
        DEV,
        _set(
            "kafka",
            {"provider": "kafka", "cluster": {"bootstrap_servers": ["kafka-1"], "admin": {"username": "a"}}},
        ),
        "dev",
        "Pulumi.dev.yaml: settings.kafka.cluster.bootstrap_servers: 'kafka-1' is not a host:port address",
    ),
    (
        "kafka provider services need scram",
        DEV,
        _set(
            "kafka",
            {
                "provider": "kafka",
                "cluster": {
                    "bootstrap_servers": ["k:9093"],
                    "sasl_mechanism": "PLAIN",
                    "admin": {"username": "a"},
                },
            },
        ),
        "dev",
        "Pulumi.dev.yaml: settings.kafka.cluster.sasl_mechanism: 'PLAIN' is not allowed",
    ),
    (
        "kafka provider needs the admin password as a secret",
        DEV,
        _set(
            "kafka",
            {"provider": "kafka", "cluster": {"bootstrap_servers": ["k:9093"], "admin": {"username": "a"}}},
        ),
        "dev",
        "Pulumi.dev.yaml: config.kafka-platform:kafkaAdminPassword: required for provider 'kafka': "
        "`pulumi config set --secret kafka-platform:kafkaAdminPassword <admin password>`",
    ),
    (
        "kubernetes output neither a mapping nor none",
        DEV,
        _set("kubernetes", "off"),
        "dev",
        "Pulumi.dev.yaml: settings.kubernetes: must be a mapping of keys to values (got str)",
    ),
    (
        "two services on one rollout deployment",
        DEV,
        _set("kubernetes|deployments|context-vectorizer", "aura360-api"),
        "dev",
        "Pulumi.dev.yaml: settings.kubernetes.deployments.context-vectorizer: "
        "deployment 'aura360-api' already runs service 'api'",
    ),
    (
        "credential generation below one",
        PROD,
        _set("credentials", {"rotation": {"generation": 0}}),
        "prod",
        "Pulumi.prod.yaml: settings.credentials.rotation.generation: must be >= 1",
    ),
    (
        "endless rotation overlap",
        PROD,
        _set("credentials", {"rotation": {"generation": 2, "overlap": "infinite"}}),
        "prod",
        "Pulumi.prod.yaml: settings.credentials.rotation.overlap: must be a finite duration",
    ),
]


@pytest.mark.parametrize(
    ("target", "edit", "stack", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_invalid_input_names_file_and_key_path(
    project: Project, target: str, edit: Edit, stack: str, expected: str
) -> None:
    if target == T:
        project.edit_topology(edit)
    else:
        project.edit_settings(target.removeprefix("Pulumi.").removesuffix(".yaml"), edit)
    with pytest.raises(ConfigError) as caught:
        project.plan(stack)
    messages = [str(problem) for problem in caught.value.problems]
    assert any(expected in message for message in messages), messages


def test_there_are_at_least_25_distinct_invalid_inputs() -> None:
    assert len({case[0] for case in CASES}) == len(CASES) >= 25


def test_all_problems_are_reported_at_once(project: Project) -> None:
    project.edit_topology(_set("topics|user.events|partitions", 0))
    project.edit_topology(_set("services|api|produces", ["nope"]))
    project.edit_settings("dev", _set("messaging|backend", "rabbitmq"))
    with pytest.raises(ConfigError) as caught:
        project.plan("dev")
    text = str(caught.value)
    assert "partitions: must be >= 1" in text
    assert "Pulumi.dev.yaml: settings.messaging.backend" in text


def test_validate_reports_a_typo_and_the_rules_it_does_not_touch_in_one_run(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown key is set aside so the rules across keys still run: the typo, an event on
    an unknown topic and a typo in the stack file come out together (one run, exit 2)."""
    project.edit_topology(_rename("topics|vectordb.ingest|partitions", "partitons"))
    project.edit_topology(_set("events|user.mood.created|topic", "user.evnts"))
    project.edit_settings("dev", _set("messaging|bakend", "celery"))
    assert cli.main(["--project-dir", str(project.root), "validate", "--stack", "dev"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[:2] for line in lines] == [
        [T, 'topics."vectordb.ingest".partitons'],
        [T, 'events."user.mood.created".topic'],
        [DEV, "settings.messaging.bakend"],
    ]
    assert "unknown key (did you mean 'partitions'?)" in lines[0]
    assert "unknown topic 'user.evnts' (did you mean 'user.events'?)" in lines[1]


def test_a_broken_rule_in_the_topology_still_lets_the_stack_be_checked_against_it(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.edit_topology(_set("events|user.mood.created|topic", "user.evnts"))
    project.edit_settings("dev", _set("kubernetes|deployments|billing", "billing"))
    assert cli.main(["--project-dir", str(project.root), "validate", "--stack", "dev"]) == 2
    assert [line.split(": ")[:2] for line in capsys.readouterr().err.splitlines()] == [
        [T, 'events."user.mood.created".topic'],
        [DEV, "settings.kubernetes.deployments.billing"],
    ]


def test_what_could_follow_from_a_key_set_aside_is_not_reported(project: Project) -> None:
    """guardian's `produce:` typo is set aside; that guardian then produces nothing is not the
    user's mistake: no "declares neither" for it, no "no service produces" for the event on the
    topic it meant to produce, and no stack check against a topology missing a key."""
    project.edit_topology(_rename("services|guardian|produces", "produce"))
    project.edit_topology(_set("services|guardian|consumes", []))
    project.edit_topology(_set("services|vectordb-ingest|consumes", ["context.vectorized", "nope"]))
    project.edit_settings("dev", _set("kubernetes|deployments|billing", "billing"))
    with pytest.raises(ConfigError) as caught:
        project.plan("dev")
    assert [(problem.file, problem.path) for problem in caught.value.problems] == [
        (T, ("services", "guardian", "produce")),
        (T, ("services", "vectordb-ingest", "consumes", 1)),
    ]


def test_a_stack_check_that_read_a_mapping_with_a_key_set_aside_is_held_back(project: Project) -> None:
    """`min_insync_replica: 1` is set aside, so the default's 2 would "exceed" the override's
    replication 1: not reported. A stack check that read nothing set aside still is."""
    project.edit_settings("local", _rename("topics|defaults|min_insync_replicas", "min_insync_replica"))
    project.edit_settings("local", _set("topics|overrides", {"user.events": {"replication": 1}}))
    project.edit_settings("local", _set("kubernetes|deployments|billing", "billing"))
    with pytest.raises(ConfigError) as caught:
        project.plan("local")
    assert [problem.path for problem in caught.value.problems] == [
        ("settings", "topics", "defaults", "min_insync_replica"),
        ("settings", "kubernetes", "deployments", "billing"),
    ]


def test_after_a_problem_other_than_an_unknown_key_the_rules_do_not_run(project: Project) -> None:
    """A value of the wrong type leaves no topology to check: what it would say is not known."""
    project.edit_topology(_set("services|guardian|produces", "guardian.responses"))
    project.edit_topology(_set("events|user.mood.created|topic", "user.evnts"))
    project.edit_settings("dev", _set("kubernetes|deployments|billing", "billing"))
    project.edit_settings("dev", _set("messaging|bakend", "celery"))
    with pytest.raises(ConfigError) as caught:
        project.plan("dev")
    assert [str(problem) for problem in caught.value.problems] == [
        "topology.yaml: services.guardian.produces: must be a list (got str)",
        "Pulumi.dev.yaml: settings.messaging.bakend: unknown key (did you mean 'backend'?); "
        "allowed keys: backend, celery_broker, dual_write, redis, routing, services",
    ]


def test_the_plan_checks_of_a_stack_report_together(project: Project) -> None:
    """A topic config Confluent refuses and an adopt list that cannot hold: one run."""
    project.edit_settings(
        "dev",
        _set("topics|overrides", {"user.events": {"config": {"preallocate": "true"}}}),
    )
    project.edit_settings("dev", _set("adopt", {"topics": ["aura360.nope"]}))
    with pytest.raises(ConfigError) as caught:
        project.plan("dev")
    assert [problem.path for problem in caught.value.problems] == [
        ("settings", "topics", "overrides", "user.events", "config", "preallocate"),
        ("settings", "adopt"),
        ("settings", "adopt", "topics", 0),
    ]


def test_cross_reference_problems_are_all_reported(project: Project) -> None:
    project.edit_topology(_set("services|api|produces", ["nope", "nada"]))
    project.edit_topology(_set("events|x", {"transport": "kafka"}))
    with pytest.raises(ConfigError) as caught:
        project.plan("dev")
    paths = {problem.path for problem in caught.value.problems}
    assert {
        ("services", "api", "produces", 0),
        ("services", "api", "produces", 1),
        ("events", "x", "topic"),
    } <= paths


def test_duplicate_yaml_keys_are_rejected(project: Project) -> None:
    text = (project.root / "topology.yaml").read_text()
    project.write("topology.yaml", text + "\ndomain: other\n")
    with pytest.raises(
        ConfigError, match=r"topology.yaml: domain: duplicate key \(line \d+; first defined on line \d+\)"
    ):
        project.plan("dev")


def test_invalid_yaml_syntax_is_reported_with_position(project: Project) -> None:
    project.write("topology.yaml", "domain: aura360\ntopics: [unclosed\n")
    with pytest.raises(ConfigError, match=r"topology.yaml: \(top level\): invalid YAML at line \d+"):
        project.plan("dev")


def test_plain_text_credentials_in_a_stack_file_are_refused(project: Project) -> None:
    text = (project.root / "Pulumi.dev.yaml").read_text()
    project.write(
        "Pulumi.dev.yaml",
        text.replace("config:\n", "config:\n  confluentcloud:cloudApiSecret: not-encrypted\n", 1),
    )
    with pytest.raises(ConfigError) as caught:
        project.plan("dev")
    message = str(caught.value)
    assert "Pulumi.dev.yaml: config.confluentcloud:cloudApiSecret: looks like a credential" in message
    assert "not-encrypted" not in message, "the value itself is never echoed"


def test_encrypted_credentials_are_accepted(project: Project) -> None:
    text = (project.root / "Pulumi.dev.yaml").read_text()
    project.write(
        "Pulumi.dev.yaml",
        text.replace("config:\n", f"config:\n  confluentcloud:cloudApiSecret:\n    secure: {ENCRYPTED}\n", 1),
    )
    assert project.plan("dev").stack == "dev"


def test_a_placeholder_in_place_of_a_secret_is_refused(project: Project) -> None:
    """What a template ships (`secure: v1:REPLACE-...`) is not a value `pulumi config set
    --secret` wrote: the stack would deploy with a garbage credential."""
    text = (project.root / "Pulumi.dev.yaml").read_text()
    placeholder = (
        "config:\n  confluentcloud:cloudApiSecret:\n    secure: v1:REPLACE-with-pulumi-config-set-secret\n"
    )
    project.write("Pulumi.dev.yaml", text.replace("config:\n", placeholder, 1))
    with pytest.raises(ConfigError) as caught:
        project.plan("dev")
    assert str(caught.value) == (
        "Pulumi.dev.yaml: config.confluentcloud:cloudApiSecret.secure: is not a value Pulumi encrypted "
        "(a placeholder?); run `pulumi config set --secret confluentcloud:cloudApiSecret ...` to store "
        "the real one"
    )


def test_unknown_project_config_key_is_a_typo(project: Project) -> None:
    text = (project.root / "Pulumi.dev.yaml").read_text()
    project.write("Pulumi.dev.yaml", text.replace("kafka-platform:settings:", "kafka-platform:setings:"))
    with pytest.raises(ConfigError) as caught:
        project.plan("dev")
    assert "Pulumi.dev.yaml: config.kafka-platform:setings: unknown key" in str(caught.value)


@pytest.mark.parametrize("stack", ["pr-abc", "pr-0", "pr-", "pr-01"])
def test_invalid_pr_stack_names(project: Project, stack: str) -> None:
    with pytest.raises(ConfigError, match="a preview stack is named pr-<number>"):
        project.plan(stack)


def test_unknown_stack_lists_the_stack_files(project: Project) -> None:
    with pytest.raises(
        ConfigError, match=r"no settings for stack 'staging'; stack files here: Pulumi\.dev\.yaml"
    ):
        project.plan("staging")


def test_pr_stack_topic_names_must_still_fit(project: Project) -> None:
    long_key = "t" * (249 - len("aura360.") - 2)
    project.edit_topology(_set(f"topics|{long_key}", {"partitions": 1}))
    project.edit_topology(
        _set("services|api|produces", ["user.events", "guardian.requests", "vectordb.ingest", long_key])
    )
    assert project.plan("dev")  # fits without a prefix
    with pytest.raises(ConfigError, match="in stack 'pr-42' the topic name"):
        project.plan("pr-42")


def test_an_event_without_a_key_on_a_compacted_topic_is_refused(project: Project) -> None:
    """A compacted topic refuses every record without a key: each publish would fail at run time."""

    def compact(topology: dict[str, Any]) -> None:
        topology["topics"]["user.events"]["cleanup"] = "compact"
        topology["events"]["user.mood.created"].pop("key")

    project.edit_topology(compact)
    with pytest.raises(ConfigError) as caught:
        project.plan("dev")
    assert str(caught.value) == (
        "topology.yaml: events.\"user.mood.created\".key: topic 'user.events' is compacted, and a "
        "compacted topic refuses every record without a key: give the event one, e.g. "
        'key: "{user_id}"'
    )


def test_a_stack_default_that_reaches_no_topic_is_a_warning(project: Project) -> None:
    project.edit_settings("dev", lambda s: s["topics"]["defaults"].update(partitions=3, retention="3d"))
    warnings = project.plan("dev").warnings
    assert [w.split(": applies to no topic")[0] for w in warnings] == [
        "Pulumi.dev.yaml: settings.topics.defaults.partitions",
        "Pulumi.dev.yaml: settings.topics.defaults.retention",
    ]
    # Once one topic leaves partitions to the stack, the default applies to it: no warning.
    project.edit_topology(lambda t: t["topics"]["user.events"].pop("partitions"))
    plan = project.plan("dev")
    assert plan.topic("user.events").partitions == 3
    assert [w for w in plan.warnings if "defaults.partitions" in w] == []


def test_a_topic_config_confluent_does_not_let_you_set_is_refused_on_confluent_stacks(
    project: Project,
) -> None:
    """Confluent Cloud rejects `compression.type` and other non-editable settings in `up`: the
    Confluent stacks refuse them at validation, naming where each was set; local keeps them."""
    project.edit_topology(_set("topics|user.events|config", {"compression.type": "zstd"}))
    project.edit_settings(
        "dev",
        lambda s: (
            s["topics"]
            .setdefault("overrides", {})
            .update({"user.events": {"config": {"preallocate": "true"}}})
        ),
    )
    with pytest.raises(ConfigError) as caught:
        project.plan("dev")
    paths = [f"{p.file}: {'.'.join(map(str, p.path))}" for p in caught.value.problems]
    assert paths == [
        "topology.yaml: topics.user.events.config.compression.type",
        "Pulumi.dev.yaml: settings.topics.overrides.user.events.config.preallocate",
    ]
    assert "Confluent Cloud does not let a topic set it (stack 'dev')" in str(caught.value)
    assert project.plan("local").topic("user.events").config["compression.type"] == "zstd"


def test_a_misspelt_produced_topic_is_one_problem_not_two(project: Project) -> None:
    """`produces: [user.evnts]` left no producer of user.events, and each event on it was also
    reported ("no service produces topic"): a follow-on of the one typo."""
    project.edit_topology(
        _set("services|api|produces", ["user.evnts", "guardian.requests", "vectordb.ingest"])
    )
    with pytest.raises(ConfigError) as caught:
        project.plan("dev")
    messages = [str(problem) for problem in caught.value.problems]
    assert any("services.api.produces[0]: unknown topic 'user.evnts'" in m for m in messages), messages
    assert not any("no service produces" in m for m in messages), messages
