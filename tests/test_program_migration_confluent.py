"""A stack migrating into Confluent Cloud under Pulumi's mocks: MirrorMaker 2's own service
account, API key and exactly its target-side ACLs on the cluster, its API key as its login in the
MirrorMaker Secret and properties, and each service on the cluster it is on; every argument name
checked against the installed pulumi-confluentcloud's Args."""

from __future__ import annotations

import copy
import inspect
from pathlib import Path
from typing import Any

import pulumi_confluentcloud as confluent
import pytest

from infra.model.names import PLATFORM_MIRROR
from infra.model.stacks import MIGRATION_SOURCE_PASSWORD_KEY
from infra.plan.migration import MIRROR_SOURCE_PASSWORD_ENV, MIRROR_TARGET_PASSWORD_ENV
from infra.plan.model import SASL_PASSWORD_ENV, SASL_USERNAME_ENV
from infra.program.preflight import unsafe_changes
from infra.program.previous_deployment import MIGRATION_MIRROR_OUTPUT, PreviousDeployment
from infra.render.mirror_maker import mirror_maker_properties
from tests.project_files import MIGRATION_SOURCE
from tests.pulumi_harness import MOCK_BOOTSTRAP, Run, is_secret_on_the_wire, run_program, stack_settings
from tests.test_program_confluent import planned_acl_rows, registered_acl_rows
from tests.test_program_confluent_schemas import camel

CC = "confluentcloud:index/"
ACL = f"{CC}kafkaAcl:KafkaAcl"
SERVICE_ACCOUNT = f"{CC}serviceAccount:ServiceAccount"
API_KEY = f"{CC}apiKey:ApiKey"  # pragma: allowlist secret - a resource type
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SECRET = "kubernetes:core/v1:Secret"  # pragma: allowlist secret - a resource type
ACCESS = "pulumi-python:dynamic/kafka:ServiceAccess"
ARGS: dict[str, type] = {
    ACL: confluent.KafkaAclArgs,
    SERVICE_ACCOUNT: confluent.ServiceAccountArgs,
    API_KEY: confluent.ApiKeyArgs,
}
SOURCE_PASSWORD = "mock-source-admin-password"  # pragma: allowlist secret
MOVED = {"vectordb-ingest": "target"}
# What the mocks make of the mirror's account and key (tests/pulumi_harness.py).
MIRROR_ACCOUNT_ID = f"sa-sa-{PLATFORM_MIRROR}"
MIRROR_KEY_ID = f"KEYAPI-KEY-{PLATFORM_MIRROR.upper()}"
MIRROR_KEY_SECRET = f"mock-api-secret-of-api-key-{PLATFORM_MIRROR}"  # pragma: allowlist secret
SOURCE_MIRROR_PASSWORD = "mock-password-of-source-scram-password-platform-mirror"  # pragma: allowlist secret
SOURCE_API_PASSWORD = "mock-password-of-source-scram-password-api"  # pragma: allowlist secret
MOVED_KEY_SECRET = "mock-api-secret-of-api-key-vectordb-ingest"  # pragma: allowlist secret


def migrating_settings(example_dir: Path, services: dict[str, str], **changes: Any) -> dict[str, Any]:
    """The prod example (Confluent Cloud, protected) migrating from the test source."""
    settings = copy.deepcopy(stack_settings(example_dir, "prod"))
    settings["migration"] = {"source": copy.deepcopy(MIGRATION_SOURCE), "services": dict(services)}
    settings.update(changes)
    return settings


def run_migrating(example_dir: Path, settings: dict[str, Any]) -> Run:
    return run_program(
        example_dir, "prod", settings=settings, secret_config={MIGRATION_SOURCE_PASSWORD_KEY: SOURCE_PASSWORD}
    )


@pytest.fixture(scope="module")
def migrating(example_dir: Path) -> Run:
    return run_migrating(example_dir, migrating_settings(example_dir, MOVED))


def test_the_plan_reaches_confluent_with_the_mirrors_api_key(migrating: Run) -> None:
    migration = migrating.plan.migration
    assert migration is not None
    target = migration.target
    assert (target.security_protocol, target.sasl_mechanism) == ("SASL_SSL", "PLAIN")
    assert target.principal == "aura360.prod.platform-mirror"
    assert migration.internal_replication == 3


def test_the_mirror_gets_an_account_and_a_key_of_its_own_unprotected(migrating: Run) -> None:
    account = migrating.one(SERVICE_ACCOUNT, f"sa-{PLATFORM_MIRROR}")
    assert account.inputs["displayName"] == "aura360.prod.platform-mirror"
    key = migrating.one(API_KEY, f"api-key-{PLATFORM_MIRROR}")
    assert key.inputs["owner"] == {"id": MIRROR_ACCOUNT_ID, "apiVersion": "iam/v2", "kind": "ServiceAccount"}
    assert key.inputs["managedResource"]["id"] == "lkc-mock"
    assert key.inputs["managedResource"]["kind"] == "Cluster"
    # A protected stack keeps its services' accounts; the mirror's go with the migration.
    assert migrating.one(SERVICE_ACCOUNT, "sa-api").protect
    assert not account.protect and not account.retain_on_delete
    assert not key.protect


def test_the_mirror_has_exactly_its_target_acls(migrating: Run) -> None:
    migration = migrating.plan.migration
    assert migration is not None
    mirror_acls = [r for r in migrating.of_type(ACL) if r.inputs["principal"] == f"User:{MIRROR_ACCOUNT_ID}"]
    actual = registered_acl_rows(mirror_acls)
    expected = planned_acl_rows(migration.target.acls)
    assert actual == expected and len(mirror_acls) == len(migration.target.acls) > 0
    assert ("GROUP", "aura360.api") in {(a.resource_type, a.resource_name) for a in migration.target.acls}
    admin = migrating.one("pulumi:providers:confluentcloud", "kafka-admin").urn
    assert all(r.provider.startswith(f"{admin}::") for r in mirror_acls)
    # Nothing of the mirror's reaches a service's ACLs, and no source grant lands on Confluent.
    assert len(migrating.of_type(ACL)) == len(migrating.plan.acls) + len(migration.target.acls)


def test_argument_names_are_the_installed_providers(migrating: Run) -> None:
    for resource in [r for r in migrating.registrations if r.type in ARGS]:
        known = {camel(name) for name in inspect.signature(ARGS[resource.type]).parameters}
        assert set(resource.inputs) - known == set(), resource.name


def test_mirror_maker_logs_in_with_the_key_id_and_its_secret_stays_secret(migrating: Run) -> None:
    plan = migrating.plan
    properties = migrating.one(CONFIG_MAP, "aura360-mirror-maker").inputs["data"]["mm2.properties"]
    assert properties == mirror_maker_properties(
        plan, target_bootstrap=MOCK_BOOTSTRAP, target_username=MIRROR_KEY_ID
    )
    assert (
        "target.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{MIRROR_KEY_ID}" password="${{env:{MIRROR_TARGET_PASSWORD_ENV}}}";'
    ) in properties.splitlines()
    assert "target.security.protocol = SASL_SSL" in properties.splitlines()
    assert "replication.factor = 3" in properties.splitlines()
    assert "config.storage.replication.factor = 3" in properties.splitlines()
    assert MIRROR_KEY_SECRET not in properties
    secret = migrating.one(SECRET, "aura360-mirror-maker-credentials")
    assert secret.inputs["stringData"] == {
        MIRROR_SOURCE_PASSWORD_ENV: SOURCE_MIRROR_PASSWORD,
        MIRROR_TARGET_PASSWORD_ENV: MIRROR_KEY_SECRET,
    }
    assert is_secret_on_the_wire(secret.wire["stringData"])
    # The source side is unchanged: its SCRAM user with its read-only grants.
    assert migrating.one(ACCESS, "source-access-platform-mirror").inputs["users"] == {
        "aura360.prod.platform-mirror": ["SCRAM-SHA-512"]
    }


def test_each_service_uses_the_cluster_it_is_on(migrating: Run) -> None:
    moved = migrating.one(CONFIG_MAP, "vectordb-ingest-kafka-env").inputs["data"]
    staying = migrating.one(CONFIG_MAP, "api-kafka-env").inputs["data"]
    assert moved["KAFKA_BROKER_URL"] == MOCK_BOOTSTRAP
    assert staying["KAFKA_BROKER_URL"] == "old-kafka-0.old:9092"
    moved_secret = migrating.one(SECRET, "vectordb-ingest-kafka-credentials").inputs["stringData"]
    assert moved_secret[SASL_USERNAME_ENV] == "KEYAPI-KEY-VECTORDB-INGEST"
    assert moved_secret[SASL_PASSWORD_ENV] == MOVED_KEY_SECRET
    staying_secret = migrating.one(SECRET, "api-kafka-credentials")
    assert staying_secret.inputs["stringData"][SASL_USERNAME_ENV] == "aura360.prod.api"
    assert staying_secret.inputs["stringData"][SASL_PASSWORD_ENV] == SOURCE_API_PASSWORD
    assert is_secret_on_the_wire(staying_secret.wire["stringData"])
    # A service keeps its Confluent key while on the source: moving it changes no identity.
    assert migrating.one(API_KEY, "api-key-api").inputs["displayName"] == "aura360.prod.api"


def test_without_the_migration_the_mirrors_account_key_and_acls_go(example_dir: Path) -> None:
    settings = migrating_settings(example_dir, MOVED)
    del settings["migration"]
    run = run_program(example_dir, "prod", settings=settings)
    assert not [r for r in run.registrations if PLATFORM_MIRROR in r.name]
    assert len(run.of_type(ACL)) == len(run.plan.acls)


def test_ending_the_migration_on_prod_is_refused_unless_allowed(example_dir: Path) -> None:
    settings = migrating_settings(example_dir, MOVED)
    del settings["migration"]
    run = run_program(example_dir, "prod", settings=settings)
    previous = PreviousDeployment({MIGRATION_MIRROR_OUTPUT: "aura360.prod.platform-mirror"})
    assert unsafe_changes(run.plan, previous) == [
        "stack 'prod' would end its migration: MirrorMaker 2 stops and its principal "
        "aura360.prod.platform-mirror and grants go from both clusters; add platform-mirror to "
        "settings.protection.allow_deletes.services to finish it on purpose"
    ]
    settings["protection"] = {"protect": True, "allow_deletes": {"topics": [], "services": [PLATFORM_MIRROR]}}
    allowed = run_program(example_dir, "prod", settings=settings)
    assert unsafe_changes(allowed.plan, previous) == []


def test_rbac_mode_still_grants_the_mirror_acls(example_dir: Path) -> None:
    run = run_migrating(example_dir, migrating_settings(example_dir, MOVED, acls={"mode": "rbac"}))
    migration = run.plan.migration
    assert migration is not None and run.plan.role_bindings
    mirror_acls = [r for r in run.of_type(ACL) if r.inputs["principal"] == f"User:{MIRROR_ACCOUNT_ID}"]
    assert len(mirror_acls) == len(run.of_type(ACL)) == len(migration.target.acls)
    assert not [r for r in run.of_type(f"{CC}roleBinding:RoleBinding") if PLATFORM_MIRROR in r.name]
