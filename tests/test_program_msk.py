"""AWS MSK as the provider, under Pulumi mocks, from the shipped example stack file."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.model.stacks import SETTINGS_KEY
from infra.plan.resolve import load_plan
from infra.plan.service_access import MSK_ADMIN_ACLS
from infra.program.kafka_admin import plan_acl_text
from infra.program.msk import ADMIN_BOOTSTRAP_GRANT, ADMIN_TOPIC_OPERATIONS
from tests.project_files import REPO
from tests.pulumi_harness import LAST_MONITOR, Run, is_secret_on_the_wire, run_program

STACK_EXAMPLE = REPO / "examples/Pulumi.prod-msk.yaml"
MSK_CLUSTER = "aws:msk/cluster:Cluster"
KMS_KEY = "aws:kms/key:Key"
SECRET = "aws:secretsmanager/secret:Secret"  # pragma: allowlist secret
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"  # pragma: allowlist secret
SECRET_POLICY = "aws:secretsmanager/secretPolicy:SecretPolicy"  # pragma: allowlist secret
ASSOCIATION = "aws:msk/scramSecretAssociation:ScramSecretAssociation"
TOPICS = "pulumi-python:dynamic/kafka:Topics"
ACCESS = "pulumi-python:dynamic/kafka:ServiceAccess"
ACL = "kafka:index/acl:Acl"
K8S_SECRET = "kubernetes:core/v1:Secret"  # pragma: allowlist secret
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
CONFIGURATION = "aws:msk/configuration:Configuration"


def example_settings(example_dir: Path) -> dict[str, Any]:
    document = yaml.safe_load(STACK_EXAMPLE.read_text())
    settings: dict[str, Any] = document["config"][SETTINGS_KEY]
    return settings


@pytest.fixture(scope="module")
def msk(example_dir: Path) -> Run:
    return run_program(example_dir, "prod-msk", settings=example_settings(example_dir))


def test_example_stack_validates_with_the_cli(example_dir: Path) -> None:
    plan = load_plan(example_dir, str(STACK_EXAMPLE))
    assert plan.cluster.provider == "msk"
    assert plan.cluster.sasl_mechanism == "SCRAM-SHA-512"


def test_resource_counts_match_the_plan(msk: Run) -> None:
    services = len(msk.plan.services)
    counts = msk.counts()
    assert counts[MSK_CLUSTER] == counts[KMS_KEY] == counts[ASSOCIATION] == 1
    assert counts["aws:msk/configuration:Configuration"] == 1
    identities = services + 1  # + the platform admin
    assert counts["random:index/randomPassword:RandomPassword"] == identities
    assert counts[SECRET] == counts[SECRET_VERSION] == counts[SECRET_POLICY] == identities
    assert counts[TOPICS] == len({topic.key.split(".")[0] for topic in msk.plan.topics})
    assert counts[ACCESS] == services
    assert counts[ACL] == 1 + len(ADMIN_TOPIC_OPERATIONS), "only the admin's own grants, one by one"
    assert counts[K8S_SECRET] == counts[CONFIG_MAP] == services


def test_cluster_enforces_scram_tls_kms_and_acls(msk: Run) -> None:
    cluster = msk.one(MSK_CLUSTER, "cluster").inputs
    assert cluster["clientAuthentication"]["sasl"]["scram"] is True
    assert cluster["clientAuthentication"]["unauthenticated"] is False
    assert cluster["encryptionInfo"]["encryptionInTransit"] == {"clientBroker": "TLS", "inCluster": True}
    assert cluster["encryptionInfo"]["encryptionAtRestKmsKeyArn"] == "arn:aws:mock:::kms-key"
    assert cluster["numberOfBrokerNodes"] == 3
    assert cluster["brokerNodeGroupInfo"]["instanceType"] == "kafka.m5.large"
    assert len(cluster["brokerNodeGroupInfo"]["clientSubnets"]) == 3
    assert cluster["loggingInfo"]["brokerLogs"]["cloudwatchLogs"]["logGroup"] == "/aws/msk/aura360-prod"
    properties = msk.one("aws:msk/configuration:Configuration", "configuration").inputs["serverProperties"]
    assert "auto.create.topics.enable=false" in properties.splitlines()
    assert "allow.everyone.if.no.acl.found=false" in properties.splitlines()


def test_acl_bootstrap_opens_the_cluster_only_while_set(example_dir: Path) -> None:
    settings = copy.deepcopy(example_settings(example_dir))
    settings["kafka"]["msk"]["acl_bootstrap"] = True
    run = run_program(example_dir, "prod-msk", settings=settings)
    properties = run.one("aws:msk/configuration:Configuration", "configuration").inputs["serverProperties"]
    assert "allow.everyone.if.no.acl.found=true" in properties.splitlines()


def test_scram_secrets_are_named_for_msk_and_encrypted_with_the_customer_key(msk: Run) -> None:
    names = {r.inputs["name"] for r in msk.of_type(SECRET)}
    assert names == {f"AmazonMSK_{p.name}" for p in msk.plan.principals} | {
        "AmazonMSK_aura360.prod-msk.platform-admin"
    }
    assert all(r.inputs["kmsKeyId"] == "arn:aws:mock:::kms-key" for r in msk.of_type(SECRET))
    for policy in msk.of_type(SECRET_POLICY):
        statement = json.loads(policy.inputs["policy"])["Statement"][0]
        assert statement["Principal"] == {"Service": "kafka.amazonaws.com"}
        assert statement["Action"] == "secretsmanager:getSecretValue"
    for version in msk.of_type(SECRET_VERSION):
        assert is_secret_on_the_wire(version.wire["secretString"])


def test_one_exclusive_association_lists_every_scram_secret(msk: Run) -> None:
    association = msk.one(ASSOCIATION, "scram-users").inputs
    assert sorted(association["secretArnLists"]) == sorted(
        f"arn:aws:mock:::{r.name}" for r in msk.of_type(SECRET)
    )
    assert association["clusterArn"] == "arn:aws:kafka:us-east-1:123456789012:cluster/mock/1"


def test_kafka_provider_uses_the_admin_scram_identity_over_tls(msk: Run) -> None:
    provider = msk.one("pulumi:providers:kafka", "kafka-admin")
    assert provider.inputs["saslMechanism"] == "scram-sha512"
    assert provider.inputs["saslUsername"] == "aura360.prod-msk.platform-admin"
    assert provider.inputs["tlsEnabled"] in (True, "true")
    assert json.loads(provider.inputs["bootstrapServers"]) == ["b-1.mock:9096", "b-2.mock:9096"]


def test_topics_and_service_acls_are_managed_only_after_the_admin_grants_exist(msk: Run) -> None:
    admin_acls = {r.urn for r in msk.of_type(ACL)}
    bootstrap_provider = msk.one("pulumi:providers:kafka", "kafka-admin")
    assert len(admin_acls) == 1 + len(ADMIN_TOPIC_OPERATIONS)
    assert all(r.provider.startswith(f"{bootstrap_provider.urn}::") for r in msk.of_type(ACL))
    for grouped in msk.of_type(TOPICS) + msk.of_type(ACCESS):
        assert admin_acls <= set(grouped.dependencies), grouped.name
        connection = grouped.inputs["connection"]
        assert connection["username"] == "aura360.prod-msk.platform-admin"
        assert (connection["security_protocol"], connection["sasl_mechanism"]) == (
            "SASL_SSL",
            "SCRAM-SHA-512",
        )
        assert is_secret_on_the_wire(grouped.wire["admin_password"])


def test_the_admin_is_granted_cluster_alter_first_and_alone(msk: Run) -> None:
    """With allow.everyone.if.no.acl.found, the first ACL on the cluster takes the cluster away from
    everyone else: it must be ALTER (which lets the admin create ACLs and implies DESCRIBE), so a
    run interrupted right after it can still finish. Proven on a real broker in the integration tests."""
    first = msk.one(ACL, "admin-acl-cluster-alter")
    assert (
        first.inputs["aclResourceType"],
        first.inputs["aclResourceName"],
        first.inputs["resourcePatternTypeFilter"],
        first.inputs["aclOperation"],
    ) == ADMIN_BOOTSTRAP_GRANT
    admin_acls = [r for r in msk.of_type(ACL) if r.name.startswith("admin-acl-")]
    assert not {r.urn for r in admin_acls} & set(first.dependencies)
    for acl in admin_acls:
        if acl is not first:
            assert first.urn in acl.dependencies, acl.name
            assert acl.inputs["aclResourceType"] == "Topic"


def test_a_kafka_version_change_gives_the_configuration_a_new_name(example_dir: Path, msk: Run) -> None:
    """The replacement configuration is created before the old one is deleted: same name, conflict."""
    settings = copy.deepcopy(example_settings(example_dir))
    settings["kafka"]["msk"]["kafka_version"] = "3.7.x"
    upgraded = run_program(example_dir, "prod-msk", settings=settings)
    before = msk.one(CONFIGURATION, "configuration").inputs
    after = upgraded.one(CONFIGURATION, "configuration").inputs
    assert (before["kafkaVersions"], after["kafkaVersions"]) == (["3.6.0"], ["3.7.x"])
    assert before["name"] != after["name"]
    assert upgraded.one(MSK_CLUSTER, "cluster").inputs["kafkaVersion"] == "3.7.x"


def test_access_vpc_dials_the_private_scram_endpoint(msk: Run) -> None:
    for grouped in msk.of_type(TOPICS) + msk.of_type(ACCESS):
        assert grouped.inputs["connection"]["bootstrap_servers"] == ["b-1.mock:9096", "b-2.mock:9096"]
    # Said, not left out: an omitted connectivity_info keeps what the cluster has (public, after
    # a `public` deployment), because the provider computes it.
    info = msk.one(MSK_CLUSTER, "cluster").inputs["brokerNodeGroupInfo"]["connectivityInfo"]
    assert info == {"publicAccess": {"type": "DISABLED"}}


def test_public_access_is_refused_before_the_cluster_exists(example_dir: Path) -> None:
    settings = copy.deepcopy(example_settings(example_dir))
    settings["kafka"]["msk"]["access"] = "public"
    with pytest.raises(Exception, match="AWS turns public access on only for an existing cluster"):
        run_program(example_dir, "prod-msk", settings=settings)
    monitor = LAST_MONITOR[0]
    assert monitor is not None and monitor.recorded == []


def test_public_access_on_an_existing_cluster_dials_port_9196(example_dir: Path) -> None:
    settings = copy.deepcopy(example_settings(example_dir))
    settings["kafka"]["msk"]["access"] = "public"
    previous = {
        "acme/kafka-platform/prod-msk": {"cluster_id": "arn:aws:kafka:us-east-1:123456789012:cluster/x/1"}
    }
    run = run_program(example_dir, "prod-msk", settings=settings, stack_outputs=previous)
    info = run.one(MSK_CLUSTER, "cluster").inputs["brokerNodeGroupInfo"]["connectivityInfo"]
    assert info == {"publicAccess": {"type": "SERVICE_PROVIDED_EIPS"}}
    for grouped in run.of_type(TOPICS) + run.of_type(ACCESS):
        assert grouped.inputs["connection"]["bootstrap_servers"] == [
            "b-1-public.mock:9196",
            "b-2-public.mock:9196",
        ]
    # Services run inside the VPC and keep the private endpoint.
    data = run.one(CONFIG_MAP, "api-kafka-env").inputs["data"]
    assert data["KAFKA_BROKER_URL"] == "b-1.mock:9096,b-2.mock:9096"


def test_acls_are_exactly_the_plan_plus_the_admin_grants(msk: Run) -> None:
    granted = [grant for access in msk.of_type(ACCESS) for grant in access.inputs["acls"]]
    assert sorted(granted) == sorted(plan_acl_text(acl, acl.principal) for acl in msk.plan.acls)
    for access in msk.of_type(ACCESS):
        assert access.inputs["users"] == {}, "MSK's users are Secrets Manager secrets, not SCRAM API users"
    admin = [r.inputs for r in msk.of_type(ACL)]
    assert {a["aclPrincipal"] for a in admin} == {"User:aura360.prod-msk.platform-admin"}
    assert {a["aclResourceName"] for a in admin if a["aclResourceType"] == "Topic"} == {"aura360."}
    assert all(a["aclOperation"] != "All" for a in admin)


def test_topics_have_replication_from_settings(msk: Run) -> None:
    registered = {
        name: spec for topics in msk.of_type(TOPICS) for name, spec in topics.inputs["topics"].items()
    }
    assert registered == {
        topic.name: {"partitions": topic.partitions, "replication_factor": 3, "config": topic.config}
        for topic in msk.plan.topics
    }


def test_service_env_uses_scram_credentials(msk: Run) -> None:
    for service in msk.plan.services:
        data = msk.one(CONFIG_MAP, service.config_map).inputs["data"]
        assert data["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert data["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert data["KAFKA_BROKER_URL"] == "b-1.mock:9096,b-2.mock:9096"
        secret = msk.one(K8S_SECRET, service.secret or "")
        assert secret.inputs["stringData"] == {
            "KAFKA_SASL_USERNAME": service.principal,
            "KAFKA_SASL_PASSWORD": f"mock-password-of-scram-password-{service.name}",
        }
        assert is_secret_on_the_wire(secret.wire["stringData"])
        assert "mock-password" not in repr(data)


def test_prod_msk_is_protected(msk: Run) -> None:
    for type_ in (MSK_CLUSTER, KMS_KEY, TOPICS, ACCESS, SECRET):
        assert all(r.protect for r in msk.of_type(type_)), type_
    assert all(r.retain_on_delete and r.inputs["removal"] == "keep" for r in msk.of_type(TOPICS))


def test_a_protected_stack_retires_a_service_in_two_runs(example_dir: Path) -> None:
    """A service that left the plan with allow_deletes: its secret and access are registered once
    more, unprotected, the secret out of the association (detached) and the access empty; the
    next run no longer registers them, so the engine deletes them (a protected one it would not)."""
    settings = copy.deepcopy(example_settings(example_dir))
    settings["protection"] = {"protect": True, "allow_deletes": {"services": ["retired"]}}
    previous = {
        "acme/kafka-platform/prod-msk": {
            "cluster_id": "arn:aws:kafka:us-east-1:123456789012:cluster/x/1",
            "services": ["api", "retired"],
        }
    }
    run = run_program(example_dir, "prod-msk", settings=settings, stack_outputs=previous)
    secret = run.one(SECRET, "scram-secret-retired")
    access = run.one(ACCESS, "access-retired")
    assert not secret.protect and not access.protect
    assert (access.inputs["acls"], access.inputs["users"]) == ({}, {})
    listed = run.one(ASSOCIATION, "scram-users").inputs["secretArnLists"]
    assert len(listed) == len(run.plan.services) + 1  # the services and the admin, not `retired`
    assert run.one(SECRET, "scram-secret-api").protect


def test_switching_provider_keeps_topics_acl_semantics_and_env_names(example_dir: Path) -> None:
    confluent, msk = load_plan(example_dir, "prod"), load_plan(example_dir, str(STACK_EXAMPLE))
    assert confluent.topics == msk.topics

    def semantics(plan: Any) -> set[tuple[str, str, str, str]]:
        return {(a.service, a.resource_type, a.resource_name, a.operation) for a in plan.acls}

    assert semantics(confluent) == semantics(msk)
    for left, right in zip(confluent.services, msk.services, strict=True):
        assert left.env.keys() == right.env.keys()
        assert left.secret_env.keys() == right.secret_env.keys()
        # Client ids are the principals, which carry the stack name (prod vs prod-msk).
        differ = {"KAFKA_SASL_MECHANISM", "KAFKA_CLIENT_ID"}
        assert {k: v for k, v in left.env.items() if k not in differ} == {
            k: v for k, v in right.env.items() if k not in differ
        }


def test_the_acl_budget_counts_exactly_the_admin_grants_the_program_makes(msk: Run) -> None:
    assert len(msk.of_type(ACL)) == MSK_ADMIN_ACLS
    granted = sum(len(access.inputs["acls"]) for access in msk.of_type(ACCESS))
    assert granted == len(msk.plan.acls)
