"""Confluent Cloud's Schema Registry under Pulumi's mocks: per subject its level, its schema and
its services' role bindings (producers write, consumers read), registered with the admin's own
registry key; every argument name checked against the installed pulumi-confluentcloud's Args."""

from __future__ import annotations

import inspect
import re
from typing import Any

import pulumi_confluentcloud as confluent
import pytest

from tests.project_files import Project
from tests.pulumi_harness import Registration, Run, run_program, stack_settings
from tests.test_event_schemas import MOOD, record, with_schema
from tests.test_program_preview import DEV_OUTPUTS

SCHEMA = "confluentcloud:index/schema:Schema"
SUBJECT_CONFIG = "confluentcloud:index/subjectConfig:SubjectConfig"
ROLE_BINDING = "confluentcloud:index/roleBinding:RoleBinding"
API_KEY = "confluentcloud:index/apiKey:ApiKey"  # pragma: allowlist secret - a resource type
PROVIDER = "pulumi:providers:confluentcloud"
SUBJECT = "aura360.user.events-value"
REGISTRY_CRN = "crn://confluent.cloud/organization=o/environment={env}/schema-registry=lsrc-mock"
ARGS: dict[str, type] = {
    SCHEMA: confluent.SchemaArgs,
    SUBJECT_CONFIG: confluent.SubjectConfigArgs,
    ROLE_BINDING: confluent.RoleBindingArgs,
    API_KEY: confluent.ApiKeyArgs,
    PROVIDER: confluent.ProviderArgs,
}


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Run:
    project = with_schema(
        Project(tmp_path_factory.mktemp("confluent-schemas")), record(MOOD, name="MoodCreated")
    )
    project.edit_settings("prod", lambda s: s.update(schemas={"subjects": {SUBJECT: "FULL"}}))
    return run_program(project.root, "prod", settings=stack_settings(project.root, "prod"))


def camel(name: str) -> str:
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(part.title() for part in rest)


def args_of(registration: Registration) -> set[str]:
    names = set(inspect.signature(ARGS[registration.type]).parameters)
    return {camel(name) for name in names}


def test_each_subject_gets_its_level_then_its_schema(prod: Run) -> None:
    (subject,) = prod.plan.subjects
    level = prod.one(SUBJECT_CONFIG, f"subject-config-{SUBJECT}")
    schema = prod.one(SCHEMA, f"schema-{SUBJECT}")
    assert level.inputs == {"subjectName": SUBJECT, "compatibilityLevel": "FULL"}
    assert schema.inputs == {"subjectName": SUBJECT, "format": "AVRO", "schema": subject.definition}
    assert level.urn in schema.dependencies, "the level is set before the schema is registered"
    assert schema.protect and level.protect, "prod keeps its subjects"


def test_producers_write_and_consumers_read_each_subject(prod: Run) -> None:
    bindings = {
        (r.inputs["principal"], r.inputs["roleName"])
        for r in prod.of_type(ROLE_BINDING)
        if r.inputs["crnPattern"].endswith(f"/subject={SUBJECT}")
    }
    accounts = {
        r.name.removeprefix("sa-"): f"User:sa-{r.name}"  # the mocks' account ids
        for r in prod.of_type("confluentcloud:index/serviceAccount:ServiceAccount")
    }
    assert bindings == {
        (accounts["admin"], "ResourceOwner"),
        (accounts["api"], "DeveloperWrite"),
        (accounts["context-aggregator"], "DeveloperRead"),
    }
    crns = {
        r.inputs["crnPattern"] for r in prod.of_type(ROLE_BINDING) if "subject=" in r.inputs["crnPattern"]
    }
    assert len(crns) == 1
    assert re.fullmatch(REGISTRY_CRN.format(env="[^/]+") + f"/subject={re.escape(SUBJECT)}", crns.pop())


def test_the_registry_is_managed_with_the_admins_own_key_and_no_schema_holds_it(prod: Run) -> None:
    key = prod.one(API_KEY, "admin-schema-registry-key")
    assert key.inputs["managedResource"]["id"] == "lsrc-mock"
    assert (key.inputs["managedResource"]["apiVersion"], key.inputs["managedResource"]["kind"]) == (
        "srcm/v3",
        "Cluster",
    )
    provider = prod.one(PROVIDER, "schema-registry-admin")
    assert provider.inputs["schemaRegistryId"] == "lsrc-mock"
    assert provider.inputs["schemaRegistryRestEndpoint"].startswith("https://psrc-mock")
    for resource in prod.of_type(SCHEMA) + prod.of_type(SUBJECT_CONFIG):
        assert resource.provider.startswith(provider.urn), "bound to the registry's provider"
        assert "credentials" not in resource.inputs


def test_every_argument_name_is_one_the_provider_sdk_has(prod: Run) -> None:
    checked: list[Any] = []
    for resource in prod.registrations:
        if resource.type in ARGS and (resource.type != PROVIDER or resource.name == "schema-registry-admin"):
            unknown = set(resource.inputs) - args_of(resource) - {"version", "pluginDownloadURL"}
            assert unknown == set(), (resource.type, resource.name)
            checked.append(resource.type)
    assert {SCHEMA, SUBJECT_CONFIG, ROLE_BINDING, API_KEY, PROVIDER} <= set(checked)


def test_a_stack_without_subjects_has_no_registry_resources(example_dir: Any) -> None:
    run = run_program(example_dir, "prod")
    assert not run.of_type(SCHEMA) and not run.of_type(SUBJECT_CONFIG)
    assert not [r for r in run.registrations if r.name == "admin-schema-registry-key"]


def test_a_preview_stack_registers_no_subjects_in_devs_registry(tmp_path: Any) -> None:
    """A pr-<n> preview shares dev's cluster and has no admin of its own (docs/topology.md)."""
    project = with_schema(Project(tmp_path), record(MOOD, name="MoodCreated"))
    run = run_program(
        project.root, "pr-42", settings=stack_settings(project.root, "dev"), stack_outputs=DEV_OUTPUTS
    )
    assert [s.subject for s in run.plan.subjects] == [f"pr-42.{SUBJECT}"]
    assert not run.of_type(SCHEMA) and not run.of_type(SUBJECT_CONFIG)
    assert not [r for r in run.of_type(API_KEY) if r.name.startswith("schema-registry-key-")]
    assert all(
        "SCHEMA_REGISTRY_URL" not in s.env and not s.secret_env.keys() & {"SCHEMA_REGISTRY_USERNAME"}
        for s in run.plan.services
    ), "no registry env where nothing is registered"


SECRET = "kubernetes:core/v1:Secret"  # pragma: allowlist secret - a resource type
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"


def test_each_service_of_a_subject_reads_the_registry_with_its_own_key(prod: Run) -> None:
    """A producer and a consumer of the subject: the environment's endpoint in the ConfigMap, an
    API key owned by the service's own account (managed resource: the registry) in the Secret."""
    endpoint = "https://psrc-mock.us-east-1.aws.confluent.cloud"
    for service in ("api", "context-aggregator"):
        key = prod.one(API_KEY, f"schema-registry-key-{service}")
        assert key.inputs["owner"] == {
            "id": f"sa-sa-{service}",
            "apiVersion": "iam/v2",
            "kind": "ServiceAccount",
        }
        assert key.inputs["managedResource"]["id"] == "lsrc-mock"
        assert key.inputs["managedResource"]["kind"] == "Cluster"
        plan = prod.plan.service(service)
        assert prod.one(CONFIG_MAP, plan.config_map).inputs["data"]["SCHEMA_REGISTRY_URL"] == endpoint
        secret = prod.one(SECRET, str(plan.secret)).inputs["stringData"]
        assert secret["SCHEMA_REGISTRY_USERNAME"] == f"KEYSCHEMA-REGISTRY-KEY-{service.upper()}"
        assert secret["SCHEMA_REGISTRY_PASSWORD"] == f"mock-api-secret-of-schema-registry-key-{service}"
        assert secret["KAFKA_SASL_USERNAME"] != secret["SCHEMA_REGISTRY_USERNAME"], "not its Kafka key"
    others = [s for s in prod.plan.services if s.name not in ("api", "context-aggregator")]
    assert others, "the example has services that use no subject"
    for other in others:
        assert "SCHEMA_REGISTRY_URL" not in other.env
        assert not [r for r in prod.of_type(API_KEY) if r.name == f"schema-registry-key-{other.name}"]
    assert prod.exports["schema_registry"] == endpoint
