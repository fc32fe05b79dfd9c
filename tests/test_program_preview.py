"""pr-<n> preview stacks under mocks: dev's cluster through a StackReference, names under pr-<n>."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pulumi_harness import Run, run_program, stack_settings

DEV_OUTPUTS = {
    "acme/kafka-platform/dev": {
        "environment_id": "env-dev",
        "cluster_id": "lkc-dev",
        "rest_endpoint": "https://pkc-dev.example:443",
        "bootstrap_servers": "pkc-dev.example:9092",
        "admin_api_key": "DEVADMINKEY",  # pragma: allowlist secret
        "admin_api_secret": "dev-admin-secret-value",  # pragma: allowlist secret
    }
}
CC = "confluentcloud:index/"


@pytest.fixture(scope="module")
def preview(example_dir: Path) -> Run:
    return run_program(
        example_dir, "pr-42", settings=stack_settings(example_dir, "dev"), stack_outputs=DEV_OUTPUTS
    )


def test_preview_creates_no_cluster_and_no_environment(preview: Run) -> None:
    counts = preview.counts()
    for kind in ("kafkaCluster:KafkaCluster", "environment:Environment", "roleBinding:RoleBinding"):
        assert counts[f"{CC}{kind}"] == 0, kind
    assert counts[f"{CC}serviceAccount:ServiceAccount"] == len(preview.plan.services), "no admin of its own"
    assert counts[f"{CC}kafkaTopic:KafkaTopic"] == len(preview.plan.topics)
    assert counts[f"{CC}kafkaAcl:KafkaAcl"] == len(preview.plan.acls)


def test_preview_uses_dev_cluster_from_the_stack_reference(preview: Run) -> None:
    provider = preview.one("pulumi:providers:confluentcloud", "kafka-admin").inputs
    admin = DEV_OUTPUTS["acme/kafka-platform/dev"]
    assert provider["kafkaId"] == "lkc-dev"
    assert provider["kafkaRestEndpoint"] == "https://pkc-dev.example:443"
    assert (provider["kafkaApiKey"], provider["kafkaApiSecret"]) == (
        admin["admin_api_key"],
        admin["admin_api_secret"],
    )
    for key in preview.of_type(f"{CC}apiKey:ApiKey"):
        assert key.inputs["managedResource"]["id"] == "lkc-dev"
        assert key.inputs["managedResource"]["environment"] == {"id": "env-dev"}
    data = preview.one("kubernetes:core/v1:ConfigMap", "api-kafka-env").inputs["data"]
    assert data["KAFKA_BROKER_URL"] == "pkc-dev.example:9092"


def test_everything_is_namespaced_under_the_pr(preview: Run) -> None:
    assert all(
        t.inputs["topicName"].startswith("pr-42.") for t in preview.of_type(f"{CC}kafkaTopic:KafkaTopic")
    )
    for acl in preview.of_type(f"{CC}kafkaAcl:KafkaAcl"):
        if acl.inputs["resourceType"] != "CLUSTER":
            assert acl.inputs["resourceName"].startswith("pr-42."), acl.inputs
    for account in preview.of_type(f"{CC}serviceAccount:ServiceAccount"):
        assert account.inputs["displayName"].startswith("aura360.pr-42.")
    namespace = preview.one("kubernetes:core/v1:Namespace", "namespace").inputs
    assert namespace["metadata"]["name"] == "aura360-dev-pr-42"
    for config_map in preview.of_type("kubernetes:core/v1:ConfigMap"):
        data = config_map.inputs["data"]
        assert config_map.inputs["metadata"]["namespace"] == "aura360-dev-pr-42"
        assert data["KAFKA_CLIENT_ID"].startswith("aura360.pr-42.")
        assert all(
            topic.startswith("pr-42.") for topic in data.get("KAFKA_PRODUCE_TOPICS", "pr-42.").split(",")
        )
        assert data.get("KAFKA_CONSUMER_GROUP", "pr-42.").startswith("pr-42.")


def test_nothing_in_a_preview_is_protected(preview: Run) -> None:
    assert not any(r.protect or r.retain_on_delete for r in preview.registrations)


def test_a_fresh_preview_namespace_gets_no_rollout_patches(preview: Run, example_dir: Path) -> None:
    """Its namespace is new: a Patch would create Deployments without selector or containers (422)."""
    assert not preview.of_type("kubernetes:apps/v1:DeploymentPatch")
    settings = stack_settings(example_dir, "dev")
    asked = run_program(
        example_dir,
        "pr-42",
        settings={**settings, "preview": {**settings["preview"], "rollouts": True}},
        stack_outputs=DEV_OUTPUTS,
    )
    patched = {r.inputs["metadata"]["name"] for r in asked.of_type("kubernetes:apps/v1:DeploymentPatch")}
    assert patched == {"aura360-api", "aura360-guardian"}


def test_preview_without_dev_outputs_fails_clearly(example_dir: Path) -> None:
    with pytest.raises(Exception, match=r"stack 'dev' has no output '[a-z_]+': a pr-<n> preview reuses"):
        run_program(example_dir, "pr-7", settings=stack_settings(example_dir, "dev"), stack_outputs={})


def test_an_rbac_preview_binds_roles_under_dev_clusters_crn_and_its_prefix(example_dir: Path) -> None:
    settings = stack_settings(example_dir, "dev")
    settings["kafka"]["confluent"]["tier"] = "standard"
    settings["acls"] = {"mode": "rbac"}
    outputs = {
        name: {
            **values,
            "rbac_crn": "crn://confluent.cloud/organization=o/environment=env-dev/cloud-cluster=lkc-dev",
        }
        for name, values in DEV_OUTPUTS.items()
    }
    run = run_program(example_dir, "pr-42", settings=settings, stack_outputs=outputs)
    bindings = run.of_type(f"{CC}roleBinding:RoleBinding")
    assert len(bindings) == len(run.plan.role_bindings) > 0
    base = "crn://confluent.cloud/organization=o/environment=env-dev/cloud-cluster=lkc-dev/kafka=lkc-dev/"
    for binding in bindings:
        resource = binding.inputs["crnPattern"].removeprefix(base)
        assert resource.split("=", 1)[1].startswith("pr-42."), resource


def test_an_rbac_preview_of_a_dev_stack_without_the_crn_output_says_to_deploy_dev(example_dir: Path) -> None:
    settings = stack_settings(example_dir, "dev")
    settings["kafka"]["confluent"]["tier"] = "standard"
    settings["acls"] = {"mode": "rbac"}
    with pytest.raises(Exception, match="stack 'dev' has no output 'rbac_crn'"):
        run_program(example_dir, "pr-42", settings=settings, stack_outputs=DEV_OUTPUTS)


def test_a_preview_never_rotates_credentials_unless_asked(example_dir: Path) -> None:
    settings = stack_settings(example_dir, "dev") | {"credentials": {"rotation": {"generation": 3}}}
    run = run_program(example_dir, "pr-9", settings=settings, stack_outputs=DEV_OUTPUTS)
    assert run.plan.credentials.generation == 1
    assert {r.name for r in run.of_type(CC + "apiKey:ApiKey")} == {
        f"api-key-{s.name}" for s in run.plan.services
    }
    settings["preview"] = {**settings.get("preview", {}), "rotate_credentials": True}
    asked = run_program(example_dir, "pr-9", settings=settings, stack_outputs=DEV_OUTPUTS)
    assert asked.plan.credentials.generation == 3
    keys = {r.name for r in asked.of_type(CC + "apiKey:ApiKey")}
    assert {f"api-key-{s.name}-g3" for s in asked.plan.services} <= keys
