"""A migrating `provider: kafka` stack under Pulumi's mocks: the source's users and grants through
the Admin-API providers, the mirror principal on both sides, MirrorMaker 2's Kubernetes objects,
and each service's ConfigMap and Secret pointing at the cluster it is on."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, cast

import pulumi
import pytest
import yaml

from infra.model.stacks import MIGRATION_SOURCE_PASSWORD_KEY, SETTINGS_KEY
from infra.plan.migration import (
    MIRROR_CREDENTIALS_OUTPUT,
    MIRROR_SOURCE_PASSWORD_ENV,
    MIRROR_TARGET_PASSWORD_ENV,
)
from infra.plan.model import SASL_PASSWORD_ENV, SASL_USERNAME_ENV
from infra.program.kafka_admin import password_version, plan_acl_text
from infra.program.kubernetes_env import CHECKSUM_ANNOTATION
from infra.program.preflight import unsafe_changes
from infra.program.previous_deployment import MIGRATION_MIRROR_OUTPUT, PreviousDeployment
from infra.render.mirror_maker import mirror_maker_properties
from tests.project_files import REPO, migrating_stack_file
from tests.pulumi_harness import Run, is_secret_on_the_wire, run_program

STACK = "existing-cluster"
ACCESS = "pulumi-python:dynamic/kafka:ServiceAccess"
TOPICS = "pulumi-python:dynamic/kafka:Topics"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SECRET = "kubernetes:core/v1:Secret"  # pragma: allowlist secret - a resource type
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SOURCE_PASSWORD = "mock-source-admin-password"  # pragma: allowlist secret
MOVED = {"vectordb-ingest": "target"}
MSK_EXAMPLE = REPO / "examples/Pulumi.prod-msk.yaml"


def generated(random_password: str) -> str:
    """What the mocks make a RandomPassword named so (tests/pulumi_harness.py)."""
    return f"mock-password-of-{random_password}"


def migrating_settings(services: dict[str, str]) -> dict[str, Any]:
    settings: dict[str, Any] = yaml.safe_load(migrating_stack_file(services))["config"][SETTINGS_KEY]
    return settings


def run_migrating(example_dir: Path, services: dict[str, str]) -> Run:
    return run_program(
        example_dir,
        STACK,
        settings=migrating_settings(services),
        secret_config={MIGRATION_SOURCE_PASSWORD_KEY: SOURCE_PASSWORD},
    )


@pytest.fixture(scope="module")
def migrating(example_dir: Path) -> Run:
    return run_migrating(example_dir, MOVED)


def test_the_source_gets_each_services_user_and_grants_and_no_topic(migrating: Run) -> None:
    plan = migrating.plan
    assert plan.migration is not None
    for service in plan.services:
        source = migrating.one(ACCESS, f"source-access-{service.name}")
        target = migrating.one(ACCESS, f"access-{service.name}")
        assert source.inputs["acls"] == target.inputs["acls"]
        assert source.inputs["users"] == {service.principal: ["SCRAM-SHA-512"]}
        assert source.retain_on_delete and not source.protect
        assert source.inputs["connection"]["bootstrap_servers"] == ["old-kafka-0.old:9092"]
        assert source.inputs["connection"]["security_protocol"] == "SASL_PLAINTEXT"
        assert source.inputs["admin_password_config"] == MIGRATION_SOURCE_PASSWORD_KEY
        # A password of its own on each cluster.
        assert source.inputs["passwords"] != target.inputs["passwords"]
    assert SOURCE_PASSWORD not in str([r.inputs for r in migrating.registrations])
    topics = [r for r in migrating.of_type(TOPICS)]
    assert {r.inputs["connection"]["bootstrap_servers"][0] for r in topics} == {"kafka-0.kafka.internal:9093"}


def test_the_mirror_principal_has_exactly_its_grants_on_each_side(migrating: Run) -> None:
    migration = migrating.plan.migration
    assert migration is not None
    for name, side in (
        ("source-access-platform-mirror", migration.source),
        ("access-platform-mirror", migration.target),
    ):
        mirror = migrating.one(ACCESS, name)
        assert set(mirror.inputs["acls"]) == {plan_acl_text(acl, acl.principal) for acl in side.acls}
        assert mirror.inputs["users"] == {side.principal: ["SCRAM-SHA-512"]}
        assert not mirror.retain_on_delete and not mirror.protect


def test_config_maps_and_secrets_point_at_the_cluster_each_service_is_on(migrating: Run) -> None:
    moved = migrating.one(CONFIG_MAP, "vectordb-ingest-kafka-env").inputs["data"]
    staying = migrating.one(CONFIG_MAP, "api-kafka-env").inputs["data"]
    assert moved["KAFKA_BROKER_URL"].startswith("kafka-0.kafka.internal:9093")
    assert staying["KAFKA_BROKER_URL"] == "old-kafka-0.old:9092"
    staying_secret = migrating.one(SECRET, "api-kafka-credentials")
    moved_secret = migrating.one(SECRET, "vectordb-ingest-kafka-credentials")
    assert staying_secret.inputs["stringData"][SASL_USERNAME_ENV] == "aura360.existing-cluster.api"
    assert staying_secret.inputs["stringData"][SASL_PASSWORD_ENV] == generated("source-scram-password-api")
    assert moved_secret.inputs["stringData"][SASL_PASSWORD_ENV] == generated("scram-password-vectordb-ingest")
    assert is_secret_on_the_wire(staying_secret.wire["stringData"])


def test_moving_a_service_changes_its_config_map_and_secret_and_nothing_else(example_dir: Path) -> None:
    before = run_migrating(example_dir, {})
    after = run_migrating(example_dir, MOVED)

    def objects(run: Run) -> dict[tuple[str, str], Any]:
        return {
            (r.type, r.name): r.inputs
            for r in run.registrations
            if r.type in (CONFIG_MAP, SECRET, ACCESS, TOPICS)
        }

    old, new = objects(before), objects(after)
    changed = sorted(key for key in old if old[key] != new.get(key))
    assert changed == [
        (CONFIG_MAP, "vectordb-ingest-kafka-env"),
        (SECRET, "vectordb-ingest-kafka-credentials"),
    ]


def test_mirror_maker_runs_from_its_config_map_and_secret(migrating: Run) -> None:
    plan = migrating.plan
    config = migrating.one(CONFIG_MAP, "aura360-mirror-maker").inputs
    assert config["data"]["mm2.properties"] == mirror_maker_properties(
        plan, target_bootstrap=plan.cluster.bootstrap
    )
    secret = migrating.one(SECRET, "aura360-mirror-maker-credentials")
    assert secret.inputs["stringData"] == {
        MIRROR_SOURCE_PASSWORD_ENV: generated("source-scram-password-platform-mirror"),
        MIRROR_TARGET_PASSWORD_ENV: generated("scram-password-platform-mirror"),
    }
    assert is_secret_on_the_wire(secret.wire["stringData"])
    deployment = migrating.one(DEPLOYMENT, "aura360-mirror-maker").inputs
    assert deployment["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    container = spec["template"]["spec"]["containers"][0]
    assert container["image"] == "apache/kafka:4.1.1"
    assert container["command"] == [
        "/opt/kafka/bin/connect-mirror-maker.sh",
        "/etc/mirror-maker/mm2.properties",
    ]
    assert container["envFrom"] == [{"secretRef": {"name": "aura360-mirror-maker-credentials"}}]
    # A new password of either side is a new version, so it restarts the pod.
    versions = [
        password_version(principal, generated(f"{prefix}scram-password-platform-mirror"))
        for principal in [plan.migration.source.principal if plan.migration else ""]
        for prefix in ("source-", "")
    ]
    checksum = hashlib.sha256("\n".join([config["data"]["mm2.properties"], *versions]).encode()).hexdigest()
    assert spec["template"]["metadata"]["annotations"][CHECKSUM_ANNOTATION] == checksum
    assert password_version("u", "a") != password_version("u", "b")


def test_without_a_migration_there_is_no_source_and_no_mirror(example_dir: Path) -> None:
    settings = migrating_settings({})
    del settings["migration"]
    run = run_program(example_dir, STACK, settings=settings)
    assert not [r for r in run.of_type(ACCESS) if "platform-mirror" in r.name or r.name.startswith("source-")]
    assert not run.of_type(DEPLOYMENT)


def test_a_protected_stack_ends_its_migration_only_when_allowed(example_dir: Path) -> None:
    settings = migrating_settings({})
    del settings["migration"]
    settings["production"] = True
    run = run_program(example_dir, STACK, settings=settings)
    previous = PreviousDeployment({MIGRATION_MIRROR_OUTPUT: "aura360.existing-cluster.platform-mirror"})
    problems = unsafe_changes(run.plan, previous)
    assert problems == [
        "stack 'existing-cluster' would end its migration: MirrorMaker 2 stops and its principal "
        "aura360.existing-cluster.platform-mirror and grants go from both clusters; add platform-mirror to "
        "settings.protection.allow_deletes.services to finish it on purpose"
    ]
    allowed = run.plan.model_copy(
        update={
            "protection": run.plan.protection.model_copy(
                update={"allowed_service_deletes": ["platform-mirror"]}
            )
        }
    )
    assert unsafe_changes(allowed, previous) == []


def test_an_msk_target_associates_the_mirrors_scram_secret_and_grants_it(example_dir: Path) -> None:
    settings: dict[str, Any] = yaml.safe_load(MSK_EXAMPLE.read_text())["config"][SETTINGS_KEY]
    settings["migration"] = {"source": migrating_settings({})["migration"]["source"]}
    run = run_program(
        example_dir,
        "prod-msk",
        settings=settings,
        secret_config={MIGRATION_SOURCE_PASSWORD_KEY: SOURCE_PASSWORD},
    )
    migration = run.plan.migration
    assert migration is not None
    secret = run.one("aws:secretsmanager/secret:Secret", "scram-secret-platform-mirror")
    assert secret.inputs["name"] == "AmazonMSK_aura360.prod-msk.platform-mirror" and not secret.protect
    association = run.one("aws:msk/scramSecretAssociation:ScramSecretAssociation", "scram-users")
    assert "arn:aws:mock:::scram-secret-platform-mirror" in association.inputs["secretArnLists"]
    mirror = run.one(ACCESS, "access-platform-mirror")
    assert set(mirror.inputs["acls"]) == {plan_acl_text(acl, acl.principal) for acl in migration.target.acls}
    assert mirror.inputs["users"] == {}
    assert run.one(ACCESS, "source-access-platform-mirror").inputs["users"] == {
        migration.source.principal: ["SCRAM-SHA-512"]
    }


def test_the_mirrors_two_logins_are_one_secret_stack_output(
    example_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `kubernetes: none` has no Secret to read them from: `migration mirror` takes them from here.
    exported: dict[str, pulumi.Output[Any]] = {}
    values: dict[str, Any] = {}
    secrecy: dict[str, bool] = {}

    def export(name: str, value: Any) -> None:
        if name == MIRROR_CREDENTIALS_OUTPUT:
            output = pulumi.Output.from_input(value)
            exported[name] = output
            output.apply(lambda plain: values.update(plain=plain))
            is_secret = cast(Awaitable[bool], output.is_secret())
            flag: pulumi.Output[bool] = pulumi.Output.from_input(is_secret)
            flag.apply(lambda secret: secrecy.update(secret=secret))

    monkeypatch.setattr(pulumi, "export", export)
    settings = migrating_settings(MOVED)
    settings["kubernetes"] = "none"
    run = run_program(
        example_dir, STACK, settings=settings, secret_config={MIGRATION_SOURCE_PASSWORD_KEY: SOURCE_PASSWORD}
    )
    assert run.plan.migration is not None
    principal = run.plan.migration.source.principal
    assert secrecy == {"secret": True}
    assert values["plain"] == {
        "source": {"username": principal, "password": generated("source-scram-password-platform-mirror")},
        "target": {"username": principal, "password": generated("scram-password-platform-mirror")},
    }
