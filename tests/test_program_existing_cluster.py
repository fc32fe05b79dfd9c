"""`provider: kafka` (a cluster this project does not create) under Pulumi mocks, from the shipped
example stack file. The real engine runs the same program in tests/e2e."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.model.stacks import ADMIN_PASSWORD_KEY, SETTINGS_KEY
from infra.program.kafka_admin import plan_acl_text
from infra.program.state_migration import MIGRATED_LAYOUT, STATE_LAYOUT
from tests.project_files import REPO
from tests.pulumi_harness import MOCK_ADMIN_PASSWORD, Run, is_secret_on_the_wire, run_program

STACK_EXAMPLE = REPO / "examples/Pulumi.existing-cluster.yaml"
STACK = "existing-cluster"
TOPICS = "pulumi-python:dynamic/kafka:Topics"
ACCESS = "pulumi-python:dynamic/kafka:ServiceAccess"
RANDOM = "random:index/randomPassword:RandomPassword"


def example_settings(example_dir: Path) -> dict[str, Any]:
    settings: dict[str, Any] = yaml.safe_load(STACK_EXAMPLE.read_text())["config"][SETTINGS_KEY]
    return settings


@pytest.fixture(scope="module")
def existing(example_dir: Path) -> Run:
    return run_program(example_dir, STACK, settings=example_settings(example_dir))


def test_topics_by_family_and_per_service_users_and_exactly_the_plans_acls(existing: Run) -> None:
    plan = existing.plan
    counts = existing.counts()
    families = {topic.key.split(".")[0] for topic in plan.topics}
    assert counts[TOPICS] == len(families)
    assert counts[ACCESS] == counts[RANDOM] == len(plan.services)
    assert not [r for r in existing.registrations if r.type.startswith(("kafka:", "pulumi:providers:kafka"))]
    assert not [
        r for r in existing.registrations if r.type.startswith(("kubernetes:", "aws:", "confluentcloud:"))
    ]
    for family in families:
        topics = existing.one(TOPICS, f"topics-{family}").inputs["topics"]
        members = [t for t in plan.topics if t.key.split(".")[0] == family]
        assert topics == {
            t.name: {
                "partitions": t.partitions,
                "replication_factor": t.replication_factor,
                "config": t.config,
            }
            for t in members
        }
    granted = set()
    for service in plan.services:
        access = existing.one(ACCESS, f"access-{service.name}").inputs
        assert access["users"] == {service.principal: ["SCRAM-SHA-512"]}
        assert access["principals"] == [f"User:{service.principal}"]
        granted |= set(access["acls"])
    assert granted == {plan_acl_text(acl, acl.principal) for acl in plan.acls}, (
        "no admin grants: the admin is given"
    )


def test_the_admin_connection_comes_from_the_settings_and_the_password_never_enters_the_state(
    existing: Run,
) -> None:
    """The providers read the admin password from the stack's config at every call (a rotated
    password works for resources the program no longer registers): no input carries it."""
    for resource in existing.of_type(TOPICS) + existing.of_type(ACCESS):
        assert resource.inputs["connection"] == {
            "bootstrap_servers": [
                "kafka-0.kafka.internal:9093",
                "kafka-1.kafka.internal:9093",
                "kafka-2.kafka.internal:9093",
            ],
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "username": "platform-admin",
            "skip_tls_verify": False,
        }, resource.name
        assert resource.inputs["admin_password_config"] == ADMIN_PASSWORD_KEY
        assert "admin_password" not in resource.inputs
        assert MOCK_ADMIN_PASSWORD not in json.dumps(resource.inputs, default=str)


def test_service_passwords_are_generated_and_secret(existing: Run) -> None:
    for service in existing.plan.services:
        access = existing.one(ACCESS, f"access-{service.name}")
        assert access.inputs["passwords"] == {
            service.principal: f"mock-password-of-scram-password-{service.name}"
        }
        assert is_secret_on_the_wire(access.wire["passwords"])


def test_a_protected_stack_keeps_topics_and_access(example_dir: Path) -> None:
    """Protected: nothing can be deleted by accident, a topic leaving the plan is released (kept
    on the cluster), and only the topics the settings allow may leave at all."""
    settings = copy.deepcopy(example_settings(example_dir))
    settings["protection"] = {"protect": True, "allow_deletes": {"topics": ["aura360.user.retired"]}}
    run = run_program(example_dir, STACK, settings=settings)
    for topics in run.of_type(TOPICS):
        assert topics.protect and topics.retain_on_delete, topics.name
        assert topics.inputs["removal"] == "keep"
    # Every group gets the whole list: a topic with a `name:` of its own has no family to filter
    # by, and the provider only looks up the names its own state holds.
    assert {tuple(t.inputs["allowed_removals"]) for t in run.of_type(TOPICS)} == {("aura360.user.retired",)}
    assert all(access.protect for access in run.of_type(ACCESS))
    unprotected = run_program(example_dir, STACK, settings=example_settings(example_dir))
    assert {t.inputs["removal"] for t in unprotected.of_type(TOPICS)} == {"delete"}
    assert not any(r.protect for r in unprotected.of_type(TOPICS) + unprotected.of_type(ACCESS))


def test_what_a_just_migrated_stack_had_is_adopted_once(example_dir: Path) -> None:
    def deployed(layout: str) -> dict[str, Any]:
        outputs = {"topic_names": ["aura360.user.events"], "kafka_state_layout": layout}
        return {f"acme/kafka-platform/{STACK}": outputs}

    migrated = run_program(
        example_dir, STACK, settings=example_settings(example_dir), stack_outputs=deployed(MIGRATED_LAYOUT)
    )
    assert migrated.one(TOPICS, "topics-user").inputs["adopt"] == ["aura360.user.events"]
    assert migrated.one(TOPICS, "topics-guardian").inputs["adopt"] == []
    # After that `up`, the inputs no longer change with what was deployed.
    later = run_program(
        example_dir, STACK, settings=example_settings(example_dir), stack_outputs=deployed(STATE_LAYOUT)
    )
    assert all(topics.inputs["adopt"] == [] for topics in later.of_type(TOPICS))


def test_a_stack_deployed_with_one_resource_per_object_must_be_migrated_first(example_dir: Path) -> None:
    deployed = {f"acme/kafka-platform/{STACK}": {"topic_names": ["aura360.user.events"]}}
    with pytest.raises(Exception, match=r"kafka-platform migrate-state --stack existing-cluster") as refused:
        run_program(example_dir, STACK, settings=example_settings(example_dir), stack_outputs=deployed)
    assert "would delete them" in str(refused.value)


def test_an_old_broker_version_adds_idempotent_write(example_dir: Path) -> None:
    settings = copy.deepcopy(example_settings(example_dir))
    settings["kafka"]["cluster"]["broker_version"] = "2.6"
    run = run_program(example_dir, STACK, settings=settings)
    grants = [
        grant
        for access in run.of_type(ACCESS)
        for grant in access.inputs["acls"]
        if " IDEMPOTENT_WRITE " in grant
    ]
    producers = ("api", "context-aggregator", "context-vectorizer", "guardian")  # not vectordb-ingest
    assert sorted(grants) == [
        f"User:aura360.{STACK}.{name} IDEMPOTENT_WRITE CLUSTER kafka-cluster" for name in producers
    ]
