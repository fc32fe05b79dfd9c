"""The Pulumi program under mocks, with each stack file's real settings (Confluent + Kubernetes)."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra.program.kubernetes_env import CHECKSUM_ANNOTATION
from tests.pulumi_harness import (
    LAST_MONITOR,
    MOCK_BOOTSTRAP,
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
def prod(repo_dir: Path) -> Run:
    return run_program(repo_dir, "prod")


@pytest.fixture(scope="module")
def dev(repo_dir: Path) -> Run:
    return run_program(repo_dir, "dev")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_resource_counts_match_the_plan(repo_dir: Path, stack: str) -> None:
    run = run_program(repo_dir, stack)
    services = len(run.plan.services)
    counts = run.counts()
    assert counts[TOPIC] == len(run.plan.topics) == 6
    assert counts[ACL] == len(run.plan.acls)
    assert counts[SERVICE_ACCOUNT] == services + 1  # + the platform admin
    assert counts[API_KEY] == services + 1
    assert counts[CLUSTER] == counts[ENVIRONMENT] == 1
    assert counts[SECRET] == counts[CONFIG_MAP] == counts[PATCH] == services


def test_every_acl_matches_the_plan_and_nothing_broader_exists(prod: Run) -> None:
    def principal_of(service: str) -> str:
        return f"User:sa-sa-{service}"  # the mocked id of that service's account

    expected = Counter(
        (
            principal_of(a.service),
            a.resource_type,
            a.resource_name,
            a.pattern_type,
            a.operation,
            a.permission,
            a.host,
        )
        for a in prod.plan.acls
    )
    actual = Counter(
        (
            r.inputs["principal"],
            r.inputs["resourceType"],
            r.inputs["resourceName"],
            r.inputs["patternType"],
            r.inputs["operation"],
            r.inputs["permission"],
            r.inputs["host"],
        )
        for r in prod.of_type(ACL)
    )
    assert actual == expected
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
    assert prod.one(CLUSTER, "cluster").inputs["deletionProtection"] is True


def test_dev_is_not_protected(dev: Run) -> None:
    assert not any(r.protect for r in dev.registrations)
    assert dev.one(CLUSTER, "cluster").inputs["deletionProtection"] is False
    assert "basic" in dev.one(CLUSTER, "cluster").inputs
    assert "standard" not in dev.one(CLUSTER, "cluster").inputs


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


def test_rollout_annotation_targets_the_mapped_deployment(prod: Run) -> None:
    patch = prod.one(PATCH, "api-rollout").inputs
    assert patch["metadata"]["name"] == "aura360-api"
    assert len(patch["spec"]["template"]["metadata"]["annotations"][CHECKSUM_ANNOTATION]) == 64


def _fingerprint(run: Run) -> dict[str, Any]:
    return {r.urn: r.inputs for r in run.registrations}


def test_flipping_backend_to_celery_touches_only_config_maps_and_rollouts(repo_dir: Path, prod: Run) -> None:
    settings = copy.deepcopy(stack_settings(repo_dir, "prod"))
    settings["messaging"]["backend"] = "celery"
    celery = run_program(repo_dir, "prod", settings=settings)
    before, after = _fingerprint(prod), _fingerprint(celery)
    assert before.keys() == after.keys()
    changed = {urn.split("::")[-2].split("$")[-1] for urn in before if before[urn] != after[urn]}
    assert changed == {CONFIG_MAP, PATCH}
    assert all(r.inputs["data"]["MESSAGING_BACKEND"] == "celery" for r in celery.of_type(CONFIG_MAP))

    def annotation(run: Run) -> Any:
        return run.one(PATCH, "api-rollout").inputs["spec"]["template"]["metadata"]["annotations"]

    assert annotation(prod) != annotation(celery), "a flag change must roll the pods"


@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_urns_are_unique(repo_dir: Path, stack: str) -> None:
    run = run_program(repo_dir, stack)
    urns = [r.urn for r in run.registrations]
    assert len(urns) == len(set(urns))


def test_logical_names_are_stable(prod: Run) -> None:
    """Topic URNs are derived from the topic name only: moving code must not replace a topic."""
    assert {r.name for r in prod.of_type(TOPIC)} == {t.name for t in prod.plan.topics}
    assert "acl-api-topic-aura360.user.events-write" in {r.name for r in prod.of_type(ACL)}


def test_local_stack_renders_manifests_without_a_cluster(repo_dir: Path) -> None:
    run = run_program(repo_dir, "local")
    counts = run.counts()
    assert counts[CLUSTER] == counts[TOPIC] == counts[ACL] == 0
    assert counts[CONFIG_MAP] == len(run.plan.services)
    assert counts[SECRET] == 0, "the local broker has no SASL users"
    assert counts[PATCH] == 0, "rendered manifests have no live Deployment to patch"
    provider = run.one("pulumi:providers:kubernetes", "render-manifests").inputs
    assert provider["renderYamlToDirectory"] == "build/k8s-local"
    assert run.one(CONFIG_MAP, "api-kafka-env").inputs["data"]["KAFKA_BROKER_URL"] == "redpanda:9092"


def test_removing_a_prod_topic_is_refused(repo_dir: Path) -> None:
    previous = {"acme/kafka-platform/prod": {"topic_names": ["aura360.legacy.events", "aura360.user.events"]}}
    with pytest.raises(Exception, match=r"would delete topics aura360\.legacy\.events; add them to"):
        run_program(repo_dir, "prod", stack_outputs=previous)


def test_allowed_prod_topic_delete_passes(repo_dir: Path) -> None:
    settings = copy.deepcopy(stack_settings(repo_dir, "prod"))
    settings["protection"]["allow_deletes"]["topics"] = ["aura360.legacy.events"]
    previous = {"acme/kafka-platform/prod": {"topic_names": ["aura360.legacy.events"]}}
    run = run_program(repo_dir, "prod", settings=settings, stack_outputs=previous)
    assert len(run.of_type(TOPIC)) == 6


def test_invalid_settings_fail_before_any_resource_is_registered(repo_dir: Path) -> None:
    settings = copy.deepcopy(stack_settings(repo_dir, "prod"))
    settings["topics"]["overrides"]["user.events"]["partitions"] = 0
    with pytest.raises(
        pulumi.RunError, match=r'Pulumi.prod.yaml: settings.topics.overrides."user.events".partitions'
    ):
        run_program(repo_dir, "prod", settings=settings)
    monitor = LAST_MONITOR[0]
    assert monitor is not None
    assert [r.type for r in monitor.recorded] == [], "nothing may be created from invalid settings"


def test_pulumi_entry_point_runs_the_program(repo_dir: Path) -> None:
    """Pulumi runs `main: infra/` by path (runpy.run_path); that must build the stack, not the CLI."""
    import json
    import runpy

    from tests.pulumi_harness import PlatformMocks, RecordingMonitor

    mocks = PlatformMocks({})
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="kafka-platform", stack="local", preview=False, monitor=monitor)
    pulumi.runtime.set_all_config({"kafka-platform:settings": json.dumps(stack_settings(repo_dir, "local"))})

    @pulumi.runtime.test
    def program() -> None:
        runpy.run_path(str(repo_dir / "infra"), run_name="__main__")

    program()
    assert sum(r.type == CONFIG_MAP for r in monitor.recorded) == 5
