"""Credential rotation under mocks: each phase registers exactly the expected users, keys and
ACLs, and a preview never rotates unless asked. The real broker proves the phases with real
clients in tests/e2e/test_credential_rotation.py."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.plan.credential_rotation import Generations, generations_now
from infra.program.kubernetes_env import CHECKSUM_ANNOTATION
from tests.project_files import EXAMPLE, REPO
from tests.pulumi_harness import Run, run_program, stack_settings

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
DAY_MS = 86_400_000
ACCESS = "pulumi-python:dynamic/kafka:ServiceAccess"
API_KEY = "confluentcloud:index/apiKey:ApiKey"  # pragma: allowlist secret


def test_generations_move_through_the_phases() -> None:
    assert generations_now(1, DAY_MS, None, NOW) == Generations(1)
    started = generations_now(2, DAY_MS, {"current": 1, "previous": None, "previous_until": None}, NOW)
    assert started == Generations(2, 1, NOW + timedelta(days=1))
    recorded = started.to_output()
    assert generations_now(2, DAY_MS, recorded, NOW + timedelta(hours=23)) == started
    assert generations_now(2, DAY_MS, recorded, NOW + timedelta(days=1, seconds=1)) == Generations(2)


def staging(generation: int) -> dict[str, Any]:
    document = yaml.safe_load((REPO / "examples" / "Pulumi.existing-cluster.yaml").read_text())
    settings: dict[str, Any] = document["config"]["kafka-platform:settings"]
    settings["credentials"] = {"rotation": {"generation": generation, "overlap": "1d"}}
    settings["protection"] = {"protect": True}
    return settings


def deploy(
    monkeypatch: pytest.MonkeyPatch,
    settings: dict[str, Any],
    recorded: dict[str, Any] | None,
    now: datetime,
    stack: str = "staging",
) -> Run:
    monkeypatch.setattr("infra.program.main.rotation_clock", lambda: now)
    outputs = {f"acme/kafka-platform/{stack}": {"credential_generations": recorded}} if recorded else {}
    return run_program(EXAMPLE, stack, settings=settings, stack_outputs=outputs)


def users(run: Run) -> set[str]:
    """Every SCRAM user the services' access resources hold."""
    return {user for access in run.of_type(ACCESS) for user in access.inputs["users"]}


def acl_principals(run: Run) -> dict[str, int]:
    counts: dict[str, int] = {}
    for access in run.of_type(ACCESS):
        for grant in access.inputs["acls"]:
            principal = grant.split(" ", 1)[0]
            counts[principal] = counts.get(principal, 0) + 1
    return counts


def rollout_checksum(run: Run) -> str:
    patch = run.one("kubernetes:apps/v1:DeploymentPatch", "api-rollout")
    return str(patch.inputs["spec"]["template"]["metadata"]["annotations"][CHECKSUM_ANNOTATION])


def test_steady_state_has_one_user_per_service(monkeypatch: pytest.MonkeyPatch) -> None:
    run = deploy(monkeypatch, staging(1), None, NOW)
    assert users(run) == {f"aura360.staging.{s.name}" for s in run.plan.services}


def test_a_rotation_adds_the_new_generation_beside_the_old(monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = {"current": 1, "previous": None, "previous_until": None}
    run = deploy(monkeypatch, staging(2), recorded, NOW)
    services = [s.name for s in run.plan.services]
    # The new users are the services' principals now; the old ones stay, with the same ACLs.
    assert users(run) == {f"aura360.staging.{s}" for s in services} | {
        f"aura360.staging.{s}-g2" for s in services
    }
    per_service = {s.name: sum(a.service == s.name for a in run.plan.acls) for s in run.plan.services}
    principals = acl_principals(run)
    for service, count in per_service.items():
        assert principals[f"User:aura360.staging.{service}"] == count
        assert principals[f"User:aura360.staging.{service}-g2"] == count
    # Services are handed the new credential; their client id (quotas, broker logs) stays.
    assert {s.principal for s in run.plan.services} == {f"aura360.staging.{s}-g2" for s in services}
    assert {s.env["KAFKA_CLIENT_ID"] for s in run.plan.services} == {f"aura360.staging.{s}" for s in services}


def test_during_the_overlap_both_stay_and_after_it_the_old_is_revoked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorded = Generations(2, 1, NOW + timedelta(days=1)).to_output()
    during = deploy(monkeypatch, staging(2), recorded, NOW + timedelta(hours=12))
    assert len(users(during)) == 2 * len(during.plan.services)
    after = deploy(monkeypatch, staging(2), recorded, NOW + timedelta(days=1, minutes=1))
    assert users(after) == {f"aura360.staging.{s.name}-g2" for s in after.plan.services}
    assert set(acl_principals(after)) == {f"User:aura360.staging.{s.name}-g2" for s in after.plan.services}


def test_generation_1_keeps_the_names_it_had_before_rotation_existed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Upgrading must not replace a single credential: the password keeps its name and keepers."""
    run = deploy(monkeypatch, staging(1), None, NOW)
    names = {r.name for r in run.registrations}
    assert "access-api" in names and "scram-password-api" in names
    password = run.one("random:index/randomPassword:RandomPassword", "scram-password-api")
    assert password.inputs["keepers"] == {"generation": "1"}


def test_confluent_rotates_the_api_key_of_the_same_account(
    monkeypatch: pytest.MonkeyPatch, example_dir: Path
) -> None:
    settings = copy.deepcopy(stack_settings(example_dir, "prod"))
    settings["credentials"] = {"rotation": {"generation": 2, "overlap": "1h"}}
    run = deploy(
        monkeypatch, settings, {"current": 1, "previous": None, "previous_until": None}, NOW, stack="prod"
    )
    keys = {r.name for r in run.of_type(API_KEY)}
    for service in run.plan.services:
        assert {f"api-key-{service.name}", f"api-key-{service.name}-g2"} <= keys
    secret = run.one("kubernetes:core/v1:Secret", "api-kafka-credentials")
    assert secret.inputs["stringData"]["KAFKA_SASL_USERNAME"] == "KEYAPI-KEY-API-G2"
    # The mapped Deployment rolls onto the new key.
    steady = deploy(monkeypatch, stack_settings(example_dir, "prod"), None, NOW, stack="prod")
    assert rollout_checksum(run) != rollout_checksum(steady)
    # The principal is the account, so ACLs are neither doubled nor changed.
    assert len(run.of_type("confluentcloud:index/kafkaAcl:KafkaAcl")) == len(run.plan.acls)


def test_msk_keeps_both_generations_associated_during_the_overlap(
    monkeypatch: pytest.MonkeyPatch, example_dir: Path
) -> None:
    document = yaml.safe_load((REPO / "examples" / "Pulumi.prod-msk.yaml").read_text())
    settings = document["config"]["kafka-platform:settings"]
    settings["credentials"] = {"rotation": {"generation": 2}}
    recorded = {"current": 1, "previous": None, "previous_until": None}
    run = deploy(monkeypatch, settings, recorded, NOW, stack="prod-msk")
    secrets = {r.inputs["name"]: r for r in run.of_type("aws:secretsmanager/secret:Secret")}
    services = [s.name for s in run.plan.services]
    for service in services:
        # MSK reads `AmazonMSK_<user>`; only the new generation is protected in prod.
        assert secrets[f"AmazonMSK_aura360.prod-msk.{service}-g2"].protect
        assert not secrets[f"AmazonMSK_aura360.prod-msk.{service}"].protect
    association = run.one("aws:msk/scramSecretAssociation:ScramSecretAssociation", "scram-users")
    assert len(association.inputs["secretArnLists"]) == 1 + 2 * len(services)  # + the admin

    after = deploy(
        monkeypatch,
        settings,
        Generations(2, 1, NOW + timedelta(days=1)).to_output(),
        NOW + timedelta(days=2),
        "prod-msk",
    )
    names = {r.inputs["name"] for r in after.of_type("aws:secretsmanager/secret:Secret")}
    assert names == {f"AmazonMSK_aura360.prod-msk.{s}-g2" for s in services} | {
        "AmazonMSK_aura360.prod-msk.platform-admin"
    }
