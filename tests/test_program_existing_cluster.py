"""`provider: kafka` (a cluster this project does not create) under Pulumi mocks, from the shipped
example stack file. The real engine runs the same program in tests/e2e."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.program.existing_cluster import PREVIEW_PASSWORD
from infra.stacks import SETTINGS_KEY
from tests.pulumi_harness import MOCK_ADMIN_PASSWORD, Run, is_secret_on_the_wire, run_program

EXAMPLE = "examples/Pulumi.existing-cluster.yaml"
STACK = "existing-cluster"
TOPIC = "kafka:index/topic:Topic"
ACL = "kafka:index/acl:Acl"
USER = "kafka:index/userScramCredential:UserScramCredential"
RANDOM = "random:index/randomPassword:RandomPassword"


def example_settings(repo_dir: Path) -> dict[str, Any]:
    settings: dict[str, Any] = yaml.safe_load((repo_dir / EXAMPLE).read_text())["config"][SETTINGS_KEY]
    return settings


@pytest.fixture(scope="module")
def existing(repo_dir: Path) -> Run:
    return run_program(repo_dir, STACK, settings=example_settings(repo_dir))


def test_topics_users_and_exactly_the_plans_acls(existing: Run) -> None:
    counts = existing.counts()
    assert counts[TOPIC] == len(existing.plan.topics)
    assert counts[ACL] == len(existing.plan.acls), "no admin grants: the admin is given, not made"
    assert counts[USER] == counts[RANDOM] == len(existing.plan.services)
    assert not [
        r for r in existing.registrations if r.type.startswith(("kubernetes:", "aws:", "confluentcloud:"))
    ]
    users = {r.inputs["username"]: r.inputs["scramMechanism"] for r in existing.of_type(USER)}
    assert users == {service.principal: "SCRAM-SHA-512" for service in existing.plan.services}


def test_the_admin_connection_comes_from_the_settings_and_secret_config(existing: Run) -> None:
    provider = existing.one("pulumi:providers:kafka", "kafka-admin")
    assert json.loads(provider.inputs["bootstrapServers"]) == [
        "kafka-0.kafka.internal:9093",
        "kafka-1.kafka.internal:9093",
        "kafka-2.kafka.internal:9093",
    ]
    assert (provider.inputs["saslUsername"], provider.inputs["saslMechanism"]) == (
        "platform-admin",
        "scram-sha512",
    )
    assert provider.inputs["tlsEnabled"] in (True, "true"), "SASL_SSL"
    assert provider.inputs["saslPassword"] == MOCK_ADMIN_PASSWORD
    assert is_secret_on_the_wire(provider.wire["saslPassword"])
    for registration in existing.of_type(TOPIC) + existing.of_type(ACL) + existing.of_type(USER):
        assert registration.provider.startswith(f"{provider.urn}::"), registration.name


def test_service_passwords_are_generated_and_secret(existing: Run) -> None:
    for user in existing.of_type(USER):
        assert user.inputs["password"].startswith("mock-password-of-scram-password-")
        assert is_secret_on_the_wire(user.wire["password"])


def test_a_first_preview_plans_users_with_a_stand_in_password(repo_dir: Path) -> None:
    """terraform-provider-kafka crashes on an unknown password in a preview (see existing_cluster.py)."""
    run = run_program(repo_dir, STACK, settings=example_settings(repo_dir), preview=True)
    assert {r.inputs["password"] for r in run.of_type(USER)} == {PREVIEW_PASSWORD}
    assert all(is_secret_on_the_wire(r.wire["password"]) for r in run.of_type(USER))


def test_a_preview_of_deployed_credentials_uses_the_real_password(repo_dir: Path) -> None:
    settings = example_settings(repo_dir)
    deployed = {
        f"acme/kafka-platform/{STACK}": {
            "credential_versions": {
                "api": f"aura360.{STACK}.api#1",
                "guardian": "a different version",  # e.g. rotated since
            }
        }
    }
    run = run_program(repo_dir, STACK, settings=settings, stack_outputs=deployed, preview=True)
    passwords = {r.name.removeprefix("scram-user-"): r.inputs["password"] for r in run.of_type(USER)}
    assert passwords["api"] == "mock-password-of-scram-password-api"
    assert passwords["guardian"] == PREVIEW_PASSWORD


def test_an_old_broker_version_adds_idempotent_write(repo_dir: Path) -> None:
    settings = copy.deepcopy(example_settings(repo_dir))
    settings["kafka"]["cluster"]["broker_version"] = "2.6"
    run = run_program(repo_dir, STACK, settings=settings)
    grants = [r.inputs for r in run.of_type(ACL) if r.inputs["aclOperation"] == "IdempotentWrite"]
    assert [(g["aclPrincipal"], g["aclResourceType"]) for g in grants] == [
        (f"User:aura360.{STACK}.api", "Cluster")
    ]
