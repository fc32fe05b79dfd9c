"""The resolved plan: names, topic configs, least-privilege ACLs, env flags."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.model.names import principal_name
from infra.plan.model import BOOTSTRAP_TOKEN, Plan
from infra.plan.resolve import load_plan
from infra.render.compose import render_compose
from infra.render.plan_table import render_table
from tests.project_files import EXAMPLE, REPO, Project

SEVEN_DAYS_MS = str(7 * 24 * 3600 * 1000)
AURA360_TOPICS = {
    "aura360.user.events",
    "aura360.context.aggregated",
    "aura360.context.vectorized",
    "aura360.guardian.requests",
    "aura360.guardian.responses",
    "aura360.vectordb.ingest",
}


@pytest.fixture(scope="module")
def prod(example_dir: Path) -> Plan:
    return load_plan(example_dir, "prod")


def grants(plan: Plan, service: str) -> set[tuple[str, str, str, str]]:
    return {
        (acl.resource_type, acl.resource_name, acl.pattern_type, acl.operation)
        for acl in plan.acls
        if acl.service == service
    }


def test_prod_plan_has_the_six_aura360_topics_with_kafka_configs(prod: Plan) -> None:
    assert {topic.name for topic in prod.topics} == AURA360_TOPICS
    for topic in prod.topics:
        assert topic.replication_factor == 3
        assert topic.config["retention.ms"] == SEVEN_DAYS_MS
        assert topic.config["cleanup.policy"] == "delete"
        assert topic.config["min.insync.replicas"] == "2"
    assert prod.topic("user.events").partitions == 12  # prod override of topology's 6
    assert prod.topic("guardian.requests").partitions == 3
    assert prod.topic("user.events").message_key == "user_id"


def test_one_principal_per_service_named_for_the_stack(prod: Plan) -> None:
    assert [(p.service, p.name) for p in prod.principals] == [
        ("api", "aura360.prod.api"),
        ("context-aggregator", "aura360.prod.context-aggregator"),
        ("context-vectorizer", "aura360.prod.context-vectorizer"),
        ("guardian", "aura360.prod.guardian"),
        ("vectordb-ingest", "aura360.prod.vectordb-ingest"),
    ]
    assert prod.cluster.admin_principal == "aura360.prod.platform-admin"


def test_principal_names_never_collide_across_stacks() -> None:
    """With '-' as separator, stack prod-eu/service api and stack eu/service api-prod met in
    one name; Confluent display names are unique per organization, so the second stack failed."""
    assert principal_name("aura360", "prod-eu", "api") != principal_name("aura360", "eu", "api-prod")
    assert principal_name("a-b", "c", "d") != principal_name("a", "b-c", "d")


def test_producer_gets_write_only(prod: Plan) -> None:
    """WRITE and READ imply DESCRIBE on the same topic: a separate DESCRIBE grant is noise."""
    assert grants(prod, "context-vectorizer") == {
        ("TOPIC", "aura360.context.aggregated", "LITERAL", "READ"),
        ("GROUP", "aura360.context-vectorizer", "LITERAL", "READ"),
        ("TOPIC", "aura360.context.vectorized", "LITERAL", "WRITE"),
    }


def test_consumer_only_service_gets_no_write(prod: Plan) -> None:
    assert grants(prod, "vectordb-ingest") == {
        ("TOPIC", "aura360.context.vectorized", "LITERAL", "READ"),
        ("TOPIC", "aura360.vectordb.ingest", "LITERAL", "READ"),
        ("GROUP", "aura360.vectordb-ingest", "LITERAL", "READ"),
    }


def test_transactional_ids_are_granted_per_instance_under_the_service_prefix(prod: Plan) -> None:
    """One literal id per service fences the second replica; each instance appends its own suffix."""
    service = prod.service("context-aggregator")
    assert service.transactional_id_prefix == "aura360.context-aggregator."
    assert service.env["KAFKA_TRANSACTIONAL_ID_PREFIX"] == "aura360.context-aggregator."
    assert "KAFKA_TRANSACTIONAL_ID" not in service.env
    assert ("TRANSACTIONAL_ID", "aura360.context-aggregator.", "PREFIXED", "WRITE") in grants(
        prod, "context-aggregator"
    )
    transactional = {acl.service for acl in prod.acls if acl.resource_type == "TRANSACTIONAL_ID"}
    assert transactional == {"context-aggregator"}


def test_idempotent_write_is_granted_only_to_brokers_older_than_2_8(project: Project) -> None:
    """KIP-679: from Kafka 2.8 WRITE on a topic is enough for an idempotent producer."""
    assert not [a for a in project.plan("prod").acls if a.operation == "IDEMPOTENT_WRITE"]
    assert project.plan("prod").service("api").env["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
    project.write("Pulumi.msk.yaml", (REPO / "examples/Pulumi.prod-msk.yaml").read_text())
    assert not [a for a in project.plan("msk").acls if a.operation == "IDEMPOTENT_WRITE"]
    project.edit_settings("msk", lambda s: s["kafka"]["msk"].update(kafka_version="2.6.2"))
    old = project.plan("msk")
    cluster = {(a.service, a.resource_type, a.operation) for a in old.acls if a.resource_type == "CLUSTER"}
    producers = {service.name for service in old.services if service.produces}
    assert cluster == {(name, "CLUSTER", "IDEMPOTENT_WRITE") for name in producers}


def test_every_producer_on_an_old_broker_may_write_idempotently_as_the_client_always_does(
    project: Project,
) -> None:
    """The client sets enable.idempotence=true for every service, not only `idempotent: true`
    ones: on a broker older than 2.8 any producer without IDEMPOTENT_WRITE would fail with
    CLUSTER_AUTHORIZATION_FAILED. A service that only consumes gets no such grant."""
    project.write("Pulumi.msk.yaml", (REPO / "examples/Pulumi.prod-msk.yaml").read_text())
    project.edit_settings("msk", lambda s: s["kafka"]["msk"].update(kafka_version="2.6.2"))
    plan = project.plan("msk")
    assert "KAFKA_ENABLE_IDEMPOTENCE" not in plan.service("context-vectorizer").env, "not declared idempotent"
    assert ("CLUSTER", "kafka-cluster", "LITERAL", "IDEMPOTENT_WRITE") in grants(plan, "context-vectorizer")
    consumer_only = [service.name for service in plan.services if service.consumes and not service.produces]
    assert consumer_only, "the example has a service that only consumes"
    for name in consumer_only:
        assert not [grant for grant in grants(plan, name) if grant[0] == "CLUSTER"], name


def test_per_instance_consumer_groups_are_granted_on_their_prefix(project: Project) -> None:
    project.edit_topology(lambda t: t["services"]["guardian"].update(consumer_group_per_instance=True))
    plan = project.plan("prod")
    guardian = plan.service("guardian")
    assert guardian.consumer_group is None
    assert guardian.consumer_group_prefix == "aura360.guardian."
    assert guardian.env["KAFKA_CONSUMER_GROUP_PREFIX"] == "aura360.guardian."
    assert "KAFKA_CONSUMER_GROUP" not in guardian.env
    assert ("GROUP", "aura360.guardian.", "PREFIXED", "READ") in grants(plan, "guardian")
    assert ("GROUP", "aura360.guardian", "LITERAL", "READ") not in grants(plan, "guardian")


def test_acls_are_exactly_what_produces_and_consumes_imply(prod: Plan) -> None:
    """Recompute the expected ACL set independently from the topology file."""
    import yaml

    topology = yaml.safe_load((EXAMPLE / "topology.yaml").read_text())
    expected: set[tuple[str, str, str, str, str]] = set()
    for name, service in topology["services"].items():
        expected |= {
            (name, "TOPIC", f"aura360.{key}", "LITERAL", "WRITE") for key in service.get("produces", [])
        }
        expected |= {
            (name, "TOPIC", f"aura360.{key}", "LITERAL", "READ") for key in service.get("consumes", [])
        }
        if service.get("consumes"):
            expected.add((name, "GROUP", f"aura360.{name}", "LITERAL", "READ"))
        if service.get("transactional"):
            expected.add((name, "TRANSACTIONAL_ID", f"aura360.{name}.", "PREFIXED", "WRITE"))
    actual = {(a.service, a.resource_type, a.resource_name, a.pattern_type, a.operation) for a in prod.acls}
    assert actual == expected
    assert len(prod.acls) == len(actual), "no duplicate bindings"
    assert all(a.permission == "ALLOW" and a.host == "*" and a.operation != "DESCRIBE" for a in prod.acls)


def test_rollouts_only_for_deployments_the_settings_name(example_dir: Path, project: Project) -> None:
    """A Patch on a missing Deployment creates it (server-side apply): only named ones are patched."""
    dev = load_plan(example_dir, "dev")
    rollouts = {s.name: s.rollout_deployment for s in dev.services}
    assert rollouts == {
        "api": "aura360-api",
        "context-aggregator": None,
        "context-vectorizer": None,
        "guardian": "aura360-guardian",
        "vectordb-ingest": None,
    }
    assert all(s.rollout_deployment is None for s in load_plan(example_dir, "pr-42").services), (
        "a fresh preview namespace has no Deployments"
    )
    assert all(s.rollout_deployment is None for s in load_plan(example_dir, "local").services)
    project.edit_settings("dev", lambda s: s["preview"].update(rollouts=True))
    asked = {s.name: s.rollout_deployment for s in project.plan("pr-42").services}
    assert asked["api"] == "aura360-api" and asked["vectordb-ingest"] is None


def test_env_flags_of_a_service(prod: Plan) -> None:
    env = prod.service("api").env
    assert env["MESSAGING_BACKEND"] == "kafka"
    assert env["MESSAGING_DUAL_WRITE"] == "false"
    assert env["KAFKA_BROKER_URL"] == BOOTSTRAP_TOKEN
    assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["KAFKA_SASL_MECHANISM"] == "PLAIN"
    assert env["KAFKA_PARTITIONER"] == "murmur2_random", "keys land where the Java clients put them"
    assert env["KAFKA_CONSUMER_GROUP"] == "aura360.api"
    assert env["KAFKA_TOPIC_USER_EVENTS"] == "aura360.user.events"
    assert env["KAFKA_TOPIC_GUARDIAN_RESPONSES"] == "aura360.guardian.responses"
    assert "KAFKA_TOPIC_CONTEXT_VECTORIZED" not in env, "only topics the service uses"
    routing = json.loads(env["MESSAGING_ROUTING"])
    assert routing["user.mood.created"] == {
        "transport": "kafka",
        "topic": "aura360.user.events",
        "key": "user:{user_id}",
    }
    assert "context.vectorized" not in routing, "api does not publish that event"
    assert set(prod.service("api").secret_env) == {"KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"}
    assert not any("PASSWORD" in key or "SECRET" in key for key in env)


def test_dev_and_local_differ_only_where_settings_say(example_dir: Path) -> None:
    dev = load_plan(example_dir, "dev")
    local = load_plan(example_dir, "local")
    assert [t.name for t in dev.topics] == [t.name for t in local.topics]
    assert dev.service("api").env["MESSAGING_DUAL_WRITE"] == "true"
    assert local.service("api").env["KAFKA_BROKER_URL"] == "redpanda:9092"
    assert local.service("api").env["KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
    assert "KAFKA_SASL_MECHANISM" not in local.service("api").env
    assert all(t.replication_factor == 1 for t in local.topics)
    assert all("min.insync.replicas" not in t.config for t in local.topics)


def test_pr_stack_prefixes_every_name(example_dir: Path) -> None:
    plan = load_plan(example_dir, "pr-42")
    assert plan.name_prefix == "pr-42."
    assert all(t.name.startswith("pr-42.aura360.") for t in plan.topics)
    assert all(t.partitions == 1 for t in plan.topics), "previews are scaled down"
    for acl in plan.acls:
        if acl.resource_type != "CLUSTER":
            assert acl.resource_name.startswith("pr-42."), acl
    assert all(p.name.startswith("aura360.pr-42.") for p in plan.principals)
    assert plan.kubernetes is not None and plan.kubernetes.namespace == "aura360-dev-pr-42"
    assert plan.cluster.shared_from_stack == "dev"
    assert plan.protection.protect is False
    for service in plan.services:
        for value in service.env.values():
            assert "aura360." not in value or "pr-42." in value, value  # no name of dev's


def test_two_pr_stacks_never_share_a_name(example_dir: Path) -> None:
    first, second = load_plan(example_dir, "pr-1"), load_plan(example_dir, "pr-12")

    def names(plan: Plan) -> set[str]:
        acl_names = {a.resource_name for a in plan.acls if a.resource_type != "CLUSTER"}
        return {t.name for t in plan.topics} | acl_names | {p.name for p in plan.principals}

    assert not names(first) & names(second)


def test_settings_routing_override_changes_only_routing(project: Project) -> None:
    before = project.plan("dev")
    project.edit_topology(lambda t: t["events"]["user.mood.created"].update(channel="aura360:user:realtime"))
    project.edit_settings(
        "dev",
        lambda s: s["messaging"].update(
            routing={"user.mood.created": "both"}, redis={"url": "redis://redis.dev.internal:6379/0"}
        ),
    )
    after = project.plan("dev")
    route = json.loads(after.service("api").env["MESSAGING_ROUTING"])["user.mood.created"]
    assert route == {
        "transport": "both",
        "topic": "aura360.user.events",
        "key": "user:{user_id}",
        "channel": "aura360:user:realtime",
    }
    assert after.acls == before.acls and after.topics == before.topics
    # Only the service that publishes the event to a channel gets Redis.
    assert after.service("api").env["REDIS_URL"] == "redis://redis.dev.internal:6379/0"
    assert "REDIS_URL" not in after.service("guardian").env


def test_a_service_can_have_its_own_backend_and_dual_write(project: Project) -> None:
    """guardian alone falls back to Celery and api alone dual-writes; the others keep the stack's."""
    project.edit_settings(
        "local",
        lambda s: s["messaging"].update(
            services={"guardian": {"backend": "celery"}, "api": {"dual_write": True}}
        ),
    )
    plan = project.plan("local")
    flags = {
        service.name: (service.env["MESSAGING_BACKEND"], service.env["MESSAGING_DUAL_WRITE"])
        for service in plan.services
    }
    assert flags == {
        "api": ("kafka", "true"),
        "context-aggregator": ("kafka", "false"),
        "context-vectorizer": ("kafka", "false"),
        "guardian": ("celery", "false"),
        "vectordb-ingest": ("kafka", "false"),
    }
    assert (plan.messaging_backend, plan.dual_write) == ("kafka", False), "the stack's default stays"
    # One service on Celery is enough for the local stack to run Redis as its broker.
    assert plan.celery_broker is not None and plan.celery_broker.host_url == "redis://localhost:16379/1"
    assert plan.service("guardian").env["CELERY_BROKER_URL"] == "redis://redis:6379/1"
    assert "redis" in yaml.safe_load(render_compose(plan))["services"]
    table = render_table(plan).splitlines()
    assert table[2] == (
        "services with their own messaging: api (backend kafka, dual_write true), "
        "guardian (backend celery, dual_write false)"
    )


def test_a_local_stack_without_celery_or_channels_runs_no_redis(example_dir: Path) -> None:
    plan = load_plan(example_dir, "local")
    assert (plan.redis, plan.celery_broker) == (None, None)
    assert "services with their own messaging" not in render_table(plan)
    assert "redis" not in yaml.safe_load(render_compose(plan))["services"]


def test_plan_json_is_deterministic_and_sorted(example_dir: Path) -> None:
    first = load_plan(example_dir, "prod").to_json()
    second = load_plan(example_dir, "prod").to_json()
    assert first == second
    document = json.loads(first)
    assert {"topics", "principals", "acls", "services"} <= set(document)
    names = [topic["name"] for topic in document["topics"]]
    assert names == sorted(names)


def test_plan_module_does_not_import_pulumi() -> None:
    code = (
        "import sys, infra.cli, infra.plan.resolve;"
        "print(any(m.split('.')[0].startswith('pulumi') for m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def with_existing_names(topology: dict[str, Any]) -> None:
    """A topic and a transactional service that already exist under names of their own."""
    topology["topics"]["prospects"] = {"name": "nexus-prospect-ingestion", "partitions": 1, "retention": "7d"}
    topology["services"]["prospector"] = {
        "produces": ["prospects"],
        "consumes": ["prospects"],
        "consumer_group": "nexus-prospector",
        "transactional": True,
        "transactional_id_prefix": "nexus-prospector-",
    }


def test_a_topic_and_a_service_keep_the_names_they_already_have(project: Project) -> None:
    plan = project.edit_topology(with_existing_names).plan("prod")
    assert plan.topic("prospects").name == "nexus-prospect-ingestion"
    assert grants(plan, "prospector") == {
        ("TOPIC", "nexus-prospect-ingestion", "LITERAL", "WRITE"),
        ("TOPIC", "nexus-prospect-ingestion", "LITERAL", "READ"),
        ("GROUP", "nexus-prospector", "LITERAL", "READ"),
        ("TRANSACTIONAL_ID", "nexus-prospector-", "PREFIXED", "WRITE"),
    }
    env = plan.service("prospector").env
    assert env["KAFKA_TOPIC_PROSPECTS"] == "nexus-prospect-ingestion"
    assert env["KAFKA_TRANSACTIONAL_ID_PREFIX"] == "nexus-prospector-"


def test_a_preview_prefixes_exact_names_too(project: Project) -> None:
    project.edit_topology(with_existing_names)
    plan = load_plan(project.root, "pr-7")
    assert plan.topic("prospects").name == "pr-7.nexus-prospect-ingestion"
    assert plan.service("prospector").env["KAFKA_TRANSACTIONAL_ID_PREFIX"] == "pr-7.nexus-prospector-"
    assert plan.service("prospector").consumer_group == "pr-7.nexus-prospector"
