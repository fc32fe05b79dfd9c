"""The Pulumi program under mocks, with each stack file's real settings (Confluent + Kubernetes)."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from infra.plan.model import AclBinding
from infra.plan.resolve import load_plan
from infra.program.kubernetes_env import CHECKSUM_ANNOTATION, config_checksum
from tests.project_files import REPO
from tests.pulumi_harness import (
    LAST_MONITOR,
    MOCK_BOOTSTRAP,
    Registration,
    Run,
    is_secret_on_the_wire,
    run_program,
    stack_settings,
)

CC = "confluentcloud:index/"
TOPIC = f"{CC}kafkaTopic:KafkaTopic"
ACL = f"{CC}kafkaAcl:KafkaAcl"
SERVICE_ACCOUNT = f"{CC}serviceAccount:ServiceAccount"
API_KEY = f"{CC}apiKey:ApiKey"
CLUSTER = f"{CC}kafkaCluster:KafkaCluster"
ENVIRONMENT = f"{CC}environment:Environment"
SECRET = "kubernetes:core/v1:Secret"  # pragma: allowlist secret
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
PATCH = "kubernetes:apps/v1:DeploymentPatch"


@pytest.fixture(scope="module")
def prod(example_dir: Path) -> Run:
    return run_program(example_dir, "prod")


@pytest.fixture(scope="module")
def dev(example_dir: Path) -> Run:
    return run_program(example_dir, "dev")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_resource_counts_match_the_plan(example_dir: Path, stack: str) -> None:
    run = run_program(example_dir, stack)
    services = len(run.plan.services)
    counts = run.counts()
    assert counts[TOPIC] == len(run.plan.topics) == 6
    assert counts[ACL] == len(run.plan.acls)
    assert counts[SERVICE_ACCOUNT] == services + 1  # + the platform admin
    assert counts[API_KEY] == services + 1
    assert counts[CLUSTER] == counts[ENVIRONMENT] == 1
    assert counts[SECRET] == counts[CONFIG_MAP] == services
    assert counts[PATCH] == 2, "only the Deployments the settings name (api, guardian) roll"


AclRow = tuple[str, str, str, str, str, str, str]


def mocked_principal(service: str) -> str:
    return f"User:sa-sa-{service}"  # the mocked id of that service's account


def planned_acl_rows(acls: Iterable[AclBinding]) -> Counter[AclRow]:
    """The plan's ACLs as the KafkaAcl resources should carry them under the mocks."""
    return Counter(
        (
            mocked_principal(a.service),
            a.resource_type,
            a.resource_name,
            a.pattern_type,
            a.operation,
            a.permission,
            a.host,
        )
        for a in acls
    )


def registered_acl_rows(registrations: Iterable[Registration]) -> Counter[AclRow]:
    return Counter(
        (
            r.inputs["principal"],
            r.inputs["resourceType"],
            r.inputs["resourceName"],
            r.inputs["patternType"],
            r.inputs["operation"],
            r.inputs["permission"],
            r.inputs["host"],
        )
        for r in registrations
    )


def test_every_acl_matches_the_plan_and_nothing_broader_exists(prod: Run) -> None:
    assert registered_acl_rows(prod.of_type(ACL)) == planned_acl_rows(prod.plan.acls)
    assert all(
        r.inputs["operation"] != "ALL" and "*" not in r.inputs["resourceName"] for r in prod.of_type(ACL)
    )
    admin_provider = prod.one("pulumi:providers:confluentcloud", "kafka-admin").urn
    assert all(r.provider.startswith(f"{admin_provider}::") for r in prod.of_type(ACL))


def test_topics_carry_the_plan_configs(prod: Run) -> None:
    for topic in prod.plan.topics:
        registered = prod.one(TOPIC, topic.name)
        assert registered.inputs["topicName"] == topic.name
        assert registered.inputs["partitionsCount"] == topic.partitions
        assert registered.inputs["config"] == topic.config


def test_prod_keeps_what_matters(prod: Run) -> None:
    for type_ in (CLUSTER, ENVIRONMENT, TOPIC, SERVICE_ACCOUNT):
        for registration in prod.of_type(type_):
            assert registration.protect, f"{type_} {registration.name} must be protected in prod"
    assert all(r.retain_on_delete for r in prod.of_type(TOPIC))


def test_dev_is_not_protected(dev: Run) -> None:
    assert not any(r.protect for r in dev.registrations)
    assert "deletionProtection" not in dev.one(CLUSTER, "cluster").inputs
    assert "basic" in dev.one(CLUSTER, "cluster").inputs
    assert "standard" not in dev.one(CLUSTER, "cluster").inputs


@pytest.mark.parametrize(
    ("tier", "extra", "sent"),
    [
        ("basic", {}, False),
        ("standard", {}, False),
        ("enterprise", {}, True),
        ("dedicated", {"ckus": 2}, True),
    ],
)
def test_deletion_protection_only_on_tiers_that_offer_it(
    example_dir: Path, tier: str, extra: dict[str, int], sent: bool
) -> None:
    """Confluent documents cluster deletion protection for enterprise and dedicated clusters only."""
    settings = copy.deepcopy(stack_settings(example_dir, "prod"))
    settings["kafka"]["confluent"].update(tier=tier, **extra)
    if tier == "basic":
        settings["kafka"]["confluent"]["availability"] = "SINGLE_ZONE"
    cluster = run_program(example_dir, "prod", settings=settings).one(CLUSTER, "cluster")
    assert cluster.protect, "Pulumi's protect guards every tier"
    assert cluster.inputs.get("deletionProtection") is (True if sent else None)


def test_cluster_sizing_comes_from_settings(prod: Run) -> None:
    cluster = prod.one(CLUSTER, "cluster").inputs
    assert (cluster["cloud"], cluster["region"], cluster["availability"]) == (
        "AWS",
        "us-east-1",
        "MULTI_ZONE",
    )
    assert "standard" in cluster


def test_admin_account_owns_topic_and_acl_management(prod: Run) -> None:
    binding = prod.one(f"{CC}roleBinding:RoleBinding", "admin-cluster-admin").inputs
    assert binding["roleName"] == "CloudClusterAdmin"
    assert binding["principal"] == "User:sa-admin"
    provider = prod.one("pulumi:providers:confluentcloud", "kafka-admin")
    assert provider.inputs["kafkaId"] == "lkc-mock"
    assert provider.inputs["kafkaApiKey"] == "KEYADMIN-API-KEY"  # pragma: allowlist secret
    assert provider.inputs["kafkaRestEndpoint"] == "https://pkc-mock.us-east-1.aws.confluent.cloud:443"
    assert is_secret_on_the_wire(provider.wire["kafkaApiSecret"])
    for registration in prod.of_type(TOPIC) + prod.of_type(ACL):
        assert registration.provider.startswith(f"{provider.urn}::"), registration.name
        assert "credentials" not in registration.inputs, "the admin secret lives only in the provider"


def test_service_api_keys_are_owned_by_their_service_account(prod: Run) -> None:
    for service in prod.plan.services:
        key = prod.one(API_KEY, f"api-key-{service.name}").inputs
        assert key["owner"] == {
            "id": f"sa-sa-{service.name}",
            "apiVersion": "iam/v2",
            "kind": "ServiceAccount",
        }
        assert key["managedResource"]["id"] == "lkc-mock"
        assert prod.one(SERVICE_ACCOUNT, f"sa-{service.name}").inputs["displayName"] == service.principal


def test_secrets_come_from_api_key_outputs_and_stay_secret(prod: Run) -> None:
    for service in prod.plan.services:
        secret = prod.one(SECRET, service.secret or "")
        assert secret.inputs["stringData"] == {
            "KAFKA_SASL_USERNAME": f"KEYAPI-KEY-{service.name.upper()}",
            "KAFKA_SASL_PASSWORD": f"mock-api-secret-of-api-key-{service.name}",
        }
        assert is_secret_on_the_wire(secret.wire["stringData"])
        assert secret.inputs["metadata"]["namespace"] == "aura360"


def test_no_plaintext_secret_in_any_config_map(prod: Run) -> None:
    secrets = {f"mock-api-secret-of-api-key-{s.name}" for s in prod.plan.services} | {
        "mock-api-secret-of-admin-api-key"
    }
    for config_map in prod.of_type(CONFIG_MAP):
        text = repr(config_map.inputs)
        assert not any(secret in text for secret in secrets)
        assert not is_secret_on_the_wire(config_map.wire.get("data"))


def test_config_maps_hold_the_plan_env_with_the_real_bootstrap(prod: Run) -> None:
    for service in prod.plan.services:
        data = prod.one(CONFIG_MAP, service.config_map).inputs["data"]
        assert data == {**service.env, "KAFKA_BROKER_URL": MOCK_BOOTSTRAP}
        assert data["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert data["KAFKA_SASL_MECHANISM"] == "PLAIN"


def _annotation(run: Run, service: str = "api") -> str:
    annotations = run.one(PATCH, f"{service}-rollout").inputs["spec"]["template"]["metadata"]["annotations"]
    return str(annotations[CHECKSUM_ANNOTATION])


def test_rollouts_patch_only_named_deployments_and_are_retained(prod: Run) -> None:
    """A Patch on a missing Deployment would create it; on destroy it would give up its field
    (rolling the pods, or failing on a deleted Deployment): retained instead."""
    patches = {r.inputs["metadata"]["name"]: r for r in prod.of_type(PATCH)}
    assert set(patches) == {"aura360-api", "aura360-guardian"}
    for patch in patches.values():
        assert patch.retain_on_delete
        assert patch.inputs["metadata"]["namespace"] == "aura360"
    api = prod.one(PATCH, "api-rollout")
    assert {prod.one(CONFIG_MAP, "api-kafka-env").urn, prod.one(SECRET, "api-kafka-credentials").urn} <= set(
        api.dependencies
    )


def test_every_kubernetes_object_goes_through_one_provider_that_updates_in_place(prod: Run) -> None:
    """Without the two flags pulumi-kubernetes replaces a changed ConfigMap or Secret, and with a
    fixed name it deletes before it creates: pods starting in between fail."""
    (provider,) = prod.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["enableConfigMapMutable"] in ("true", True)
    assert provider.inputs["enableSecretMutable"] in ("true", True)
    kubernetes_objects = [r for r in prod.registrations if r.type.startswith("kubernetes:")]
    assert kubernetes_objects and all(r.provider.startswith(provider.urn) for r in kubernetes_objects)


def test_a_rollout_does_not_wait_for_ready_pods_unless_asked(example_dir: Path, prod: Run) -> None:
    metadata = prod.one(PATCH, "api-rollout").inputs["metadata"]["annotations"]
    assert metadata == {
        "pulumi.com/skipAwait": "true",
        "pulumi.com/patchForce": "true",
        "pulumi.com/patchFieldManager": "kafka-platform-rollout",
    }
    settings = stack_settings(example_dir, "prod")
    settings["kubernetes"]["rollout_wait"] = "90s"
    waiting = run_program(example_dir, "prod", settings=settings).one(PATCH, "api-rollout")
    assert "pulumi.com/skipAwait" not in waiting.inputs["metadata"]["annotations"]
    assert waiting.custom_timeouts == {"create": "90s", "update": "90s"}


def test_rollout_checksum_covers_env_and_credential_identity_not_the_secret(prod: Run) -> None:
    service = prod.plan.service("api")
    env = {**service.env, "KAFKA_BROKER_URL": MOCK_BOOTSTRAP}
    assert _annotation(prod) == config_checksum(env, "KEYAPI-KEY-API")
    assert _annotation(prod) != config_checksum(env, "")


def test_a_new_api_key_rolls_the_pods(example_dir: Path, prod: Run) -> None:
    rotated = run_program(example_dir, "prod", key_generation=2)
    assert (
        rotated.one(SECRET, "api-kafka-credentials").inputs["stringData"]["KAFKA_SASL_USERNAME"]
        != (prod.one(SECRET, "api-kafka-credentials").inputs["stringData"]["KAFKA_SASL_USERNAME"])
    )
    assert _annotation(rotated) != _annotation(prod)


def _fingerprint(run: Run) -> dict[str, Any]:
    return {r.urn: r.inputs for r in run.registrations}


def test_flipping_backend_to_celery_touches_only_config_maps_and_rollouts(
    example_dir: Path, prod: Run
) -> None:
    """The README's walk-through: the broker is set first (every ConfigMap gains it), then the
    flip changes only the backend flag."""
    settings = copy.deepcopy(stack_settings(example_dir, "prod"))
    settings["messaging"]["celery_broker"] = {"url": "redis://redis.prod.internal:6379/1"}
    ready = run_program(example_dir, "prod", settings=settings)
    assert all(
        r.inputs["data"]["CELERY_BROKER_URL"] == "redis://redis.prod.internal:6379/1"
        for r in ready.of_type(CONFIG_MAP)
    )
    settings["messaging"]["backend"] = "celery"
    celery = run_program(example_dir, "prod", settings=settings)
    before, after = _fingerprint(ready), _fingerprint(celery)
    assert before.keys() == after.keys()
    changed = {urn.split("::")[-2].split("$")[-1] for urn in before if before[urn] != after[urn]}
    assert changed == {CONFIG_MAP, PATCH}
    assert all(r.inputs["data"]["MESSAGING_BACKEND"] == "celery" for r in celery.of_type(CONFIG_MAP))
    assert _annotation(ready) != _annotation(celery), "a flag change must roll the pods"


@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_urns_are_unique(example_dir: Path, stack: str) -> None:
    run = run_program(example_dir, stack)
    urns = [r.urn for r in run.registrations]
    assert len(urns) == len(set(urns))


def test_logical_names_are_stable(prod: Run) -> None:
    """Topic URNs are derived from the topic name only: moving code must not replace a topic."""
    assert {r.name for r in prod.of_type(TOPIC)} == {t.name for t in prod.plan.topics}
    names = {r.name for r in prod.of_type(ACL)}
    assert "acl-api-topic-aura360.user.events-write" in names
    assert "acl-context-aggregator-transactional_id-prefixed-aura360.context-aggregator.-write" in names


def test_local_stack_renders_manifests_without_a_cluster(example_dir: Path) -> None:
    run = run_program(example_dir, "local")
    counts = run.counts()
    assert counts[CLUSTER] == counts[TOPIC] == counts[ACL] == 0
    assert counts[CONFIG_MAP] == len(run.plan.services)
    assert counts[SECRET] == 0, "the local broker has no SASL users"
    assert counts[PATCH] == 0, "rendered manifests have no live Deployment to patch"
    provider = run.one("pulumi:providers:kubernetes", "render-manifests").inputs
    # Plugins run in the program directory (infra/): a relative path would render there.
    assert provider["renderYamlToDirectory"] == str(example_dir / "build" / "k8s-local")
    assert run.one(CONFIG_MAP, "api-kafka-env").inputs["data"]["KAFKA_BROKER_URL"] == "redpanda:9092"


def _registered_types() -> list[str]:
    monitor = LAST_MONITOR[0]
    assert monitor is not None
    return [r.type for r in monitor.recorded]


def test_removing_a_prod_topic_is_refused_before_anything_is_registered(example_dir: Path) -> None:
    """Raised inside an apply, the refusal surfaced only after every registration had gone to the
    engine: creates and updates ran before `up` failed. Now nothing is registered at all."""
    previous = {"acme/kafka-platform/prod": {"topic_names": ["aura360.legacy.events", "aura360.user.events"]}}
    with pytest.raises(pulumi.RunError, match=r"would delete topics aura360\.legacy\.events; add them to"):
        run_program(example_dir, "prod", stack_outputs=previous)
    assert _registered_types() == []


def test_the_guard_reads_this_stacks_own_last_outputs(prod: Run) -> None:
    assert prod.stack_reads == ["acme/kafka-platform/prod"]
    assert not prod.of_type("pulumi:pulumi:StackReference"), "no reference resource in the stack"


def test_allowed_prod_topic_delete_passes(example_dir: Path) -> None:
    settings = copy.deepcopy(stack_settings(example_dir, "prod"))
    settings["protection"]["allow_deletes"]["topics"] = ["aura360.legacy.events"]
    previous = {"acme/kafka-platform/prod": {"topic_names": ["aura360.legacy.events"]}}
    run = run_program(example_dir, "prod", settings=settings, stack_outputs=previous)
    assert len(run.of_type(TOPIC)) == 6


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_partition_decrease_is_refused_before_anything_is_registered(example_dir: Path, stack: str) -> None:
    """Both providers replace a topic whose partitions drop: create-before-delete fails on the
    existing name, and would lose the data if it did not. Refused in every stack."""
    before = 24 if stack == "prod" else 12
    now = 12 if stack == "prod" else 6
    previous = {f"acme/kafka-platform/{stack}": {"topic_partitions": {"aura360.user.events": float(before)}}}
    with pytest.raises(
        pulumi.RunError, match=rf"topic aura360\.user\.events would shrink from {before} to {now} partitions"
    ):
        run_program(example_dir, stack, stack_outputs=previous)
    assert _registered_types() == []


def test_a_partition_increase_goes_ahead(example_dir: Path) -> None:
    previous = {"acme/kafka-platform/prod": {"topic_partitions": {"aura360.user.events": 6.0}}}
    run = run_program(example_dir, "prod", stack_outputs=previous)
    assert run.one(TOPIC, "aura360.user.events").inputs["partitionsCount"] == 12


def test_invalid_settings_fail_before_any_resource_is_registered(example_dir: Path) -> None:
    settings = copy.deepcopy(stack_settings(example_dir, "prod"))
    settings["topics"]["overrides"]["user.events"]["partitions"] = 0
    with pytest.raises(
        pulumi.RunError, match=r'Pulumi.prod.yaml: settings.topics.overrides."user.events".partitions'
    ):
        run_program(example_dir, "prod", settings=settings)
    monitor = LAST_MONITOR[0]
    assert monitor is not None
    assert [r.type for r in monitor.recorded] == [], "nothing may be created from invalid settings"


def test_pulumi_entry_point_runs_the_program(example_dir: Path) -> None:
    """Pulumi runs the program directory (the project root: Pulumi.yaml has no `main:`) by path,
    as the release's pulumi-language-python-exec does (runpy.run_path): that builds the stack."""
    import json
    import runpy

    from tests.pulumi_harness import PlatformMocks, RecordingMonitor

    mocks = PlatformMocks({})
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="kafka-platform", stack="local", preview=False, monitor=monitor)
    pulumi.runtime.set_all_config({"kafka-platform:settings": json.dumps(stack_settings(REPO, "local"))})

    @pulumi.runtime.test
    def program() -> None:
        project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
        runpy.run_path(str(REPO / project.get("main", ".")), run_name="__main__")

    program()
    # The root project: the example until a team's `init` makes it its own.
    assert sum(r.type == CONFIG_MAP for r in monitor.recorded) == len(load_plan(REPO, "local").services)


ROLE_BINDING = f"{CC}roleBinding:RoleBinding"
MOCK_KAFKA_CRN = (
    "crn://confluent.cloud/organization=o/environment=env-mock/cloud-cluster=lkc-mock/kafka=lkc-mock"
)


@pytest.fixture(scope="module")
def prod_rbac(example_dir: Path) -> Run:
    settings = copy.deepcopy(stack_settings(example_dir, "prod"))
    settings["acls"] = {"mode": "rbac"}
    return run_program(example_dir, "prod", settings=settings)


def test_rbac_mode_binds_roles_instead_of_acls(prod_rbac: Run) -> None:
    assert prod_rbac.counts()[ACL] == 0
    service_bindings = [r for r in prod_rbac.of_type(ROLE_BINDING) if r.name.startswith("rb-")]
    assert len(service_bindings) == len(prod_rbac.plan.role_bindings) > 0
    actual = Counter(
        (r.inputs["principal"], r.inputs["roleName"], r.inputs["crnPattern"]) for r in service_bindings
    )
    assert actual[("User:sa-sa-api", "DeveloperWrite", f"{MOCK_KAFKA_CRN}/topic=aura360.user.events")] == 1
    assert actual[("User:sa-sa-api", "DeveloperRead", f"{MOCK_KAFKA_CRN}/group=aura360.api")] == 1
    expected = Counter(
        (
            f"User:sa-sa-{b.service}",
            b.role,
            f"{MOCK_KAFKA_CRN}/{b.resource_type}={b.resource_name}"
            + ("*" if b.pattern_type == "PREFIXED" else ""),
        )
        for b in prod_rbac.plan.role_bindings
    )
    assert actual == expected
    # Through the Cloud API (default provider), never the cluster-scoped admin provider.
    admin_provider = prod_rbac.one("pulumi:providers:confluentcloud", "kafka-admin").urn
    assert not any(r.provider.startswith(f"{admin_provider}::") for r in service_bindings)


def test_the_cluster_crn_is_exported_for_previews(prod_rbac: Run) -> None:
    assert f"{prod_rbac.exports['rbac_crn']}/kafka=lkc-mock" == MOCK_KAFKA_CRN


def test_a_broker_url_with_a_credential_reaches_only_the_secret(example_dir: Path) -> None:
    settings = copy.deepcopy(stack_settings(example_dir, "prod"))
    settings["messaging"] |= {"backend": "celery", "celery_broker": {"secret": True}}
    url = "rediss://:s3cr3t-broker@redis.prod.internal:6380/1"  # pragma: allowlist secret
    run = run_program(
        example_dir, "prod", settings=settings, secret_config={"kafka-platform:celeryBrokerUrl": url}
    )
    for service in run.plan.services:
        data = run.one(CONFIG_MAP, f"{service.name}-kafka-env").inputs["data"]
        assert "CELERY_BROKER_URL" not in data and url not in str(data)
        secret = run.one(SECRET, f"{service.name}-kafka-credentials")
        assert secret.inputs["stringData"]["CELERY_BROKER_URL"] == url
        assert is_secret_on_the_wire(secret.wire["stringData"]), "the Secret's data travels as a secret"
