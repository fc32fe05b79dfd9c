"""The CrossGuard policy pack: one passing and one violating case per policy, and the real
program's resources (under mocks) pass every policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from policy import kafka_policies as policies
from tests.project_files import REPO, Project, add_streams_and_connect
from tests.pulumi_harness import Registration, Run, run_program, stack_settings

Validator = Any


def args(
    resource_type: str, props: dict[str, Any], stack: str = "prod", protect: bool = True
) -> ResourceValidationArgs:
    options = PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    urn = f"urn:pulumi:{stack}::kafka-platform::{resource_type}::resource"
    return ResourceValidationArgs(resource_type, props, urn, "resource", options, None)


def violations(validator: Validator, validation_args: ResourceValidationArgs) -> list[str]:
    found: list[str] = []
    validator(validation_args, lambda message, urn=None: found.append(message))
    return found


TOPIC_OK = {"topicName": "aura360.user.events", "config": {"retention.ms": "1", "min.insync.replicas": "2"}}
CLUSTER_CRN = "crn://confluent.cloud/organization=o/environment=env-1/cloud-cluster=lkc-1"
KAFKA_CRN = f"{CLUSTER_CRN}/kafka=lkc-1"
ACL_OK = {
    "principal": "User:sa-1",
    "resourceType": "TOPIC",
    "resourceName": "aura360.user.events",
    "operation": "WRITE",
    "patternType": "LITERAL",
}

CASES: list[tuple[str, Validator, ResourceValidationArgs, ResourceValidationArgs, str]] = [
    (
        "durability",
        policies.prod_topic_durability,
        args(policies.CONFLUENT_TOPIC, TOPIC_OK),
        args(
            policies.KAFKA_TOPIC,
            {"name": "t", "replicationFactor": 2, "config": {"min.insync.replicas": "1"}},
        ),
        "replication >= 3",
    ),
    (
        "retention",
        policies.topic_has_retention_or_compaction,
        args(policies.CONFLUENT_TOPIC, {"topicName": "t", "config": {"cleanup.policy": "compact"}}),
        args(policies.CONFLUENT_TOPIC, {"topicName": "t", "config": {"cleanup.policy": "delete"}}),
        "neither a retention",
    ),
    (
        "wildcard principal",
        policies.acl_no_wildcards,
        args(policies.CONFLUENT_ACL, ACL_OK),
        args(
            policies.KAFKA_ACL,
            {
                "aclPrincipal": "User:*",
                "aclResourceType": "Topic",
                "aclResourceName": "t",
                "aclOperation": "Read",
            },
        ),
        "wildcard principal",
    ),
    (
        "wildcard topic",
        policies.acl_no_wildcards,
        args(
            policies.KAFKA_ACL,
            {
                "aclPrincipal": "User:a",
                "aclResourceType": "Topic",
                "aclResourceName": "t",
                "aclOperation": "Read",
            },
        ),
        args(policies.CONFLUENT_ACL, {**ACL_OK, "resourceName": "*"}),
        "every resource",
    ),
    (
        "no ALL",
        policies.acl_never_all,
        args(policies.CONFLUENT_ACL, ACL_OK),
        args(policies.CONFLUENT_ACL, {**ACL_OK, "operation": "ALL"}),
        "ALL operations",
    ),
    (
        "pr prefix",
        policies.pr_principal_stays_in_its_prefix,
        args(policies.CONFLUENT_ACL, {**ACL_OK, "resourceName": "pr-7.aura360.user.events"}, stack="pr-7"),
        args(policies.CONFLUENT_ACL, ACL_OK, stack="pr-7"),
        "outside 'pr-7.'",
    ),
    (
        "wildcard role binding",
        policies.role_binding_names_its_resources,
        args(
            policies.ROLE_BINDING,
            {"roleName": "DeveloperRead", "crnPattern": f"{KAFKA_CRN}/topic=aura360.user.*"},
        ),
        args(policies.ROLE_BINDING, {"roleName": "DeveloperRead", "crnPattern": f"{KAFKA_CRN}/topic=*"}),
        "wildcard CRN",
    ),
    (
        "cluster-wide data role",
        policies.role_binding_names_its_resources,
        args(policies.ROLE_BINDING, {"roleName": "CloudClusterAdmin", "crnPattern": CLUSTER_CRN}),
        args(policies.ROLE_BINDING, {"roleName": "DeveloperWrite", "crnPattern": KAFKA_CRN}),
        "a whole cluster or more",
    ),
    (
        "pr prefix role binding",
        policies.pr_principal_stays_in_its_prefix,
        args(
            policies.ROLE_BINDING,
            {"roleName": "DeveloperRead", "crnPattern": f"{KAFKA_CRN}/group=connect-pr-7.aura360.sink.*"},
            stack="pr-7",
        ),
        args(
            policies.ROLE_BINDING,
            {"roleName": "DeveloperRead", "crnPattern": f"{KAFKA_CRN}/group=connect-aura360.sink.*"},
            stack="pr-7",
        ),
        "outside 'pr-7.'",
    ),
    (
        "configmap key",
        policies.config_map_has_no_credentials,
        args(policies.CONFIG_MAP, {"data": {"KAFKA_BROKER_URL": "b:9092", "MESSAGING_BACKEND": "kafka"}}),
        args(policies.CONFIG_MAP, {"data": {"KAFKA_SASL_PASSWORD": "hunter2"}}),  # pragma: allowlist secret
        "looks like a credential",
    ),
    (
        "configmap value",
        policies.config_map_has_no_credentials,
        args(
            policies.CONFIG_MAP,
            {"data": {"mm2.properties": 'x.sasl.jaas.config = M required username="a" password="${env:P}";'}},
        ),
        args(policies.CONFIG_MAP, {"data": {"JAAS": 'ScramLoginModule required username="a" password="b";'}}),
        "value of 'JAAS' looks like a credential",
    ),
    (
        "protected",
        policies.protected_stays_protected,
        args(policies.CONFLUENT_TOPIC, TOPIC_OK, protect=True),
        args(policies.CONFLUENT_TOPIC, TOPIC_OK, protect=False),
        "must be protected in production",
    ),
]


@pytest.mark.parametrize(
    ("validator", "passing", "violating", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_policy_passes_and_violates(
    validator: Validator, passing: ResourceValidationArgs, violating: ResourceValidationArgs, expected: str
) -> None:
    assert violations(validator, passing) == []
    found = violations(validator, violating)
    assert found and expected in found[0], found


def test_dev_stacks_are_not_held_to_production_rules() -> None:
    weak = {"name": "t", "replicationFactor": 1, "config": {"retention.ms": "1"}}
    assert violations(policies.prod_topic_durability, args(policies.KAFKA_TOPIC, weak, stack="dev")) == []
    unprotected = args(policies.CONFLUENT_TOPIC, TOPIC_OK, stack="dev", protect=False)
    assert violations(policies.protected_stays_protected, unprotected) == []


def test_every_policy_is_in_the_pack() -> None:
    assert {p.name for p in policies.POLICIES} == {
        "prod-topic-durability",
        "topic-retention-or-compaction",
        "acl-no-wildcards",
        "acl-never-all",
        "role-binding-no-wildcards",
        "pr-principal-in-prefix",
        "configmap-no-credentials",
        "protected-stays-protected",
    }


def _as_args(registration: Registration) -> ResourceValidationArgs:
    options = PolicyResourceOptions(registration.protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    return ResourceValidationArgs(
        registration.type, registration.inputs, registration.urn, registration.name, options, None
    )


def pack_violations(run: Run) -> list[str]:
    """Every policy of the pack on every resource the program registered."""
    return [
        f"{policy.name}: {registration.name}: {message}"
        for registration in run.registrations
        for policy in policies.POLICIES
        for message in violations(policy.validate, _as_args(registration))
    ]


PR_OUTPUTS = {
    "acme/kafka-platform/dev": {
        "environment_id": "env-dev",
        "cluster_id": "lkc-dev",
        "rest_endpoint": "https://dev:443",
        "bootstrap_servers": "dev:9092",
        "admin_api_key": "K",
        "admin_api_secret": "S",
        "rbac_crn": CLUSTER_CRN,
    }
}


@pytest.mark.parametrize(
    ("stack", "mode"),
    [
        (stack, mode)
        for stack in ("dev", "prod", "pr-42", "prod-msk")
        for mode in ("literal", "prefixed", "rbac")
        if (stack, mode) != ("prod-msk", "rbac")
    ],  # role bindings are Confluent's
)
def test_the_program_passes_its_own_policy_pack(tmp_path: Path, stack: str, mode: str) -> None:
    """Every stack shape and access mode, with a Streams app and a Connect worker in the topology."""
    import yaml

    project = Project(tmp_path).edit_topology(add_streams_and_connect)
    if stack == "prod-msk":
        settings = yaml.safe_load((REPO / "examples/Pulumi.prod-msk.yaml").read_text())["config"][
            "kafka-platform:settings"
        ]
    else:
        settings = stack_settings(project.root, "dev" if stack.startswith("pr-") else stack)
    settings["acls"] = {"mode": mode}
    if mode == "rbac":
        settings["kafka"]["confluent"] |= {"tier": "standard"}
    run = run_program(project.root, stack, settings=settings, stack_outputs=PR_OUTPUTS)
    assert mode != "rbac" or run.plan.role_bindings
    assert pack_violations(run) == []


def preview_args(resource_type: str, props: dict[str, Any], stack: str = "prod") -> ResourceValidationArgs:
    """Props as the SDK hands them over during a preview: unknown values raise when read."""
    return args(resource_type, unknown_checking_proxy(props), stack=stack)


def test_a_preview_checks_every_known_field_and_names_the_unknown_ones() -> None:
    """A Confluent ACL's principal is the id of a service account still to be created. Reading it
    used to abort the policy, so its known wildcard resource went unreported."""
    acl = {**ACL_OK, "principal": UNKNOWN_STRING_VALUE, "resourceName": "*"}
    found: list[str] = []
    with pytest.raises(UnknownValueError) as unknown:
        policies.acl_no_wildcards(preview_args(policies.CONFLUENT_ACL, acl), found.append)
    assert found == ["ACL applies to every resource ('*')"]
    assert unknown.value.message.startswith(".principal can't be known during preview")


def test_a_preview_checks_the_known_entries_of_a_config_map() -> None:
    data = {"KAFKA_BROKER_URL": UNKNOWN_STRING_VALUE, "KAFKA_SASL_PASSWORD": "x"}  # pragma: allowlist secret
    found: list[str] = []
    with pytest.raises(UnknownValueError) as unknown:
        policies.config_map_has_no_credentials(
            preview_args(policies.CONFIG_MAP, {"data": data}), found.append
        )
    assert found == ["ConfigMap key 'KAFKA_SASL_PASSWORD' looks like a credential; put it in a Secret"]
    assert ".data.KAFKA_BROKER_URL" in unknown.value.message


def test_a_fully_known_preview_raises_nothing() -> None:
    found: list[str] = []
    policies.acl_no_wildcards(preview_args(policies.CONFLUENT_ACL, ACL_OK), found.append)
    assert found == []


GROUPED_TOPICS_OK = {
    "topics": {
        "pr-7.aura360.user.events": {
            "partitions": 6,
            "replication_factor": 3,
            "config": {"retention.ms": "1", "min.insync.replicas": "2"},
        }
    }
}


def test_every_topic_of_a_grouped_resource_is_judged_and_named() -> None:
    """`kafka` and `msk` stacks keep a family of topics in one resource: each topic in it is judged
    as a topic resource would be, and a violation names the topic."""
    weak = {"partitions": 1, "replication_factor": 1, "config": {"cleanup.policy": "delete"}}
    grouped = {"topics": {**GROUPED_TOPICS_OK["topics"], "aura360.user.audit": weak}}
    assert not violations(policies.prod_topic_durability, args(policies.GROUPED_TOPICS, GROUPED_TOPICS_OK))
    assert violations(policies.prod_topic_durability, args(policies.GROUPED_TOPICS, grouped)) == [
        "topic aura360.user.audit: production topics need replication >= 3 (has 1)",
        "topic aura360.user.audit: production topics need min.insync.replicas >= 2 (has None)",
    ]
    retention = violations(policies.topic_has_retention_or_compaction, args(policies.GROUPED_TOPICS, grouped))
    assert retention == [
        "topic aura360.user.audit: topic sets neither a retention (retention.ms/bytes) "
        "nor cleanup.policy=compact"
    ]
    pr = args(policies.GROUPED_TOPICS, grouped, stack="pr-7")
    assert violations(policies.pr_principal_stays_in_its_prefix, pr) == [
        "preview stack pr-7 manages topic 'aura360.user.audit' outside 'pr-7.'"
    ]
    unprotected = args(policies.GROUPED_TOPICS, GROUPED_TOPICS_OK, protect=False)
    assert violations(policies.protected_stays_protected, unprotected)


def test_every_grant_of_a_service_access_is_judged_and_named() -> None:
    good = "User:pr-7.aura360.api WRITE TOPIC pr-7.aura360.user.events"
    grants = {
        good: "ALLOW",
        "User:* READ TOPIC pr-7.aura360.user.events": "ALLOW",
        "User:pr-7.aura360.api READ GROUP aura360.api*": "ALLOW",
    }
    access = args(policies.GROUPED_ACCESS, {"acls": grants}, stack="pr-7")
    assert violations(policies.acl_no_wildcards, access) == [
        "grant 'User:* READ TOPIC pr-7.aura360.user.events': ACL grants to the wildcard principal 'User:*'"
    ]
    assert violations(policies.pr_principal_stays_in_its_prefix, access) == [
        "grant 'User:pr-7.aura360.api READ GROUP aura360.api*': preview stack pr-7 grants access to "
        "'aura360.api' outside 'pr-7.'"
    ]
    assert not violations(policies.acl_never_all, access)
    everything = args(policies.GROUPED_ACCESS, {"acls": {"User:x ALL TOPIC t": "ALLOW"}})
    assert violations(policies.acl_never_all, everything) == [
        "grant 'User:x ALL TOPIC t': ACL grants ALL operations; grant the specific operations instead"
    ]


def test_a_migrating_production_stack_passes_its_own_policy_pack(tmp_path: Path) -> None:
    """The source's users and grants and the mirror principal end with the migration (unprotected,
    guarded by the preflight); MirrorMaker 2's properties name their passwords, never hold them."""
    import yaml

    from infra.model.stacks import MIGRATION_SOURCE_PASSWORD_KEY
    from tests.project_files import migrating_stack_file

    settings = yaml.safe_load(migrating_stack_file({"vectordb-ingest": "target"}))["config"][
        "kafka-platform:settings"
    ]
    settings["production"] = True
    run = run_program(
        Project(tmp_path).root,
        "prod",
        settings=settings,
        secret_config={MIGRATION_SOURCE_PASSWORD_KEY: "mock"},  # pragma: allowlist secret
    )
    assert run.plan.migration is not None
    assert pack_violations(run) == []
    target_access = next(r for r in run.registrations if r.name == "access-api")
    assert violations(policies.protected_stays_protected, _as_args(target_access)) == []
    assert target_access.protect
