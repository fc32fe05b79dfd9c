"""`settings.schemas.registry` on existing-cluster and MSK stacks: refused with the key path where
wrong, the registry env of each service that writes or reads a subject, and the program's one
`SchemaSubjects` resource under Pulumi's mocks (the provider itself runs against a real registry in
tests/integration/test_schema_registry.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
import yaml

from infra.model.stacks import SCHEMA_REGISTRY_PASSWORD_KEY, SETTINGS_KEY
from infra.plan.model import (
    SCHEMA_REGISTRY_PASSWORD_ENV,
    SCHEMA_REGISTRY_URL_ENV,
    SCHEMA_REGISTRY_USERNAME_ENV,
)
from tests.integration.kafka_apps import free_port
from tests.project_files import (
    REPO,
    Project,
    existing_cluster_stack_file,
    with_schema_registry_password,
)
from tests.pulumi_harness import is_secret_on_the_wire, run_program, stack_settings
from tests.test_event_schemas import MOOD, record, with_schema

URL = "https://registry.internal"
MSK_EXAMPLE = REPO / "examples" / "Pulumi.prod-msk.yaml"
SUBJECT = "aura360.user.events-value"
SUBJECTS = "pulumi-python:dynamic/schemas:Subjects"
SECRET = "kubernetes:core/v1:Secret"  # pragma: allowlist secret - a resource type
REGISTRY_PASSWORD = "registry-password-from-config"  # pragma: allowlist secret


def staging(project: Project, registry: dict[str, Any] | None, *, password: bool = True) -> Project:
    """An existing-cluster stack `staging` whose `user.mood.created` events have a schema."""
    with_schema(project, record(MOOD, name="MoodCreated"))
    text = existing_cluster_stack_file()
    project.write("Pulumi.staging.yaml", with_schema_registry_password(text) if password else text)
    if registry is not None:
        project.edit_settings("staging", lambda s: s.update(schemas={"registry": registry}))
    return project


def validate(project: Project, stack: str = "staging") -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "infra", "--project-dir", str(project.root), "validate", "--stack", stack],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def test_services_that_write_or_read_a_subject_get_the_registry(project: Project) -> None:
    plan = staging(project, {"url": f"{URL}/", "username": "platform"}).plan("staging")
    assert plan.schema_registry is not None and plan.schema_registry.url == URL
    users = {"api", "context-aggregator"}  # the subject's producer and consumer
    for service in plan.services:
        if service.name in users:
            assert service.env[SCHEMA_REGISTRY_URL_ENV] == URL
            assert set(service.secret_env) >= {SCHEMA_REGISTRY_USERNAME_ENV, SCHEMA_REGISTRY_PASSWORD_ENV}
            assert SCHEMA_REGISTRY_PASSWORD_KEY in service.secret_env[SCHEMA_REGISTRY_PASSWORD_ENV]
        else:
            assert SCHEMA_REGISTRY_URL_ENV not in service.env, service.name
            assert SCHEMA_REGISTRY_USERNAME_ENV not in service.secret_env, service.name


def test_a_registry_without_auth_puts_nothing_in_the_secret(project: Project) -> None:
    plan = staging(project, {"url": URL}, password=False).plan("staging")
    api = plan.service("api")
    assert api.env[SCHEMA_REGISTRY_URL_ENV] == URL
    assert not {SCHEMA_REGISTRY_USERNAME_ENV, SCHEMA_REGISTRY_PASSWORD_ENV} & set(api.secret_env)


def test_subjects_without_a_registry_are_a_warning_not_a_refusal(project: Project) -> None:
    code, stdout, stderr = validate(staging(project, None))
    assert code == 0, stderr
    assert (
        "Pulumi.staging.yaml: settings.schemas.registry: not set: the stack's 1 subject(s) are reviewed "
        "by `diff` but registered nowhere"
    ) in stdout + stderr


# (case, settings.schemas.registry, password set, settings.adopt.subjects, expected message)
BAD_SETTINGS: list[tuple[str, dict[str, Any] | None, bool, list[str], str]] = [
    (
        "credential in the URL",
        {"url": "https://platform:hunter2@registry.internal"},  # pragma: allowlist secret
        True,
        [],
        "Pulumi.staging.yaml: settings.schemas.registry.url: holds a credential: set `username` here",
    ),
    (
        "not an http URL",
        {"url": "registry.internal:8081"},
        True,
        [],
        "Pulumi.staging.yaml: settings.schemas.registry.url: 'registry.internal:8081' is not an http://",
    ),
    (
        "a user without the password",
        {"url": URL, "username": "platform"},
        False,
        [],
        f"Pulumi.staging.yaml: config.{SCHEMA_REGISTRY_PASSWORD_KEY}: required by "
        "settings.schemas.registry.username",
    ),
    (
        "an unknown key",
        {"url": URL, "password": "x"},  # pragma: allowlist secret
        True,
        [],
        "Pulumi.staging.yaml: settings.schemas.registry.password: ",
    ),
    (
        "adopting a subject the plan lacks",
        {"url": URL},
        True,
        ["aura360.nope-value"],
        "Pulumi.staging.yaml: settings.adopt.subjects[0]: 'aura360.nope-value' is not a subject of this "
        f"stack's plan (its subjects: {SUBJECT})",
    ),
    (
        "adopting without a registry",
        None,
        True,
        [SUBJECT],
        "Pulumi.staging.yaml: settings.adopt.subjects[0]: needs settings.schemas.registry",
    ),
]


@pytest.mark.parametrize(
    ("registry", "password", "adopt", "expected"),
    [case[1:] for case in BAD_SETTINGS],
    ids=[case[0] for case in BAD_SETTINGS],
)
def test_a_bad_registry_setting_exits_2_naming_the_key_path(
    project: Project,
    registry: dict[str, Any] | None,
    password: bool,
    adopt: list[str],
    expected: str,
) -> None:
    staging(project, registry, password=password)
    if adopt:
        project.edit_settings("staging", lambda s: s.update(adopt={"subjects": adopt}))
    code, _, stderr = validate(project)
    assert code == 2 and expected in stderr, stderr


def test_a_registry_is_refused_where_the_provider_brings_its_own(project: Project) -> None:
    with_schema(project, record(MOOD, name="MoodCreated"))
    project.edit_settings("prod", lambda s: s.update(schemas={"registry": {"url": URL}}))
    code, _, stderr = validate(project, "prod")
    assert code == 2
    assert (
        "Pulumi.prod.yaml: settings.schemas.registry: only used when provider is kafka or msk "
        "(provider is 'confluent')"
    ) in stderr


# --- the program, under Pulumi's mocks --------------------------------------------------------


def program_run(project: Project, *, protect: bool = False, adopt: list[str] | None = None) -> Any:
    staging(project, {"url": URL, "username": "platform"})

    def edit(settings: dict[str, Any]) -> None:
        settings["kubernetes"] = {"namespace": "platform"}
        settings["protection"] = {"protect": protect}
        settings["adopt"] = {"subjects": adopt or []}

    project.edit_settings("staging", edit)
    return run_program(
        project.root,
        "staging",
        settings=stack_settings(project.root, "staging"),
        secret_config={SCHEMA_REGISTRY_PASSWORD_KEY: REGISTRY_PASSWORD},
    )


def test_one_subjects_resource_with_the_plan_and_never_the_password(project: Project) -> None:
    run = program_run(project, adopt=[SUBJECT])
    (subjects,) = run.of_type(SUBJECTS)
    (planned,) = run.plan.subjects
    inputs = {key: value for key, value in subjects.inputs.items() if key != "__provider"}
    assert inputs == {
        "registry": {"url": URL, "username": "platform"},
        "password_config": SCHEMA_REGISTRY_PASSWORD_KEY,
        "subjects": {SUBJECT: {"schema": planned.definition, "compatibility": "BACKWARD"}},
        "adopt": [SUBJECT],
        "removal": "delete",
    }
    assert not subjects.protect
    assert REGISTRY_PASSWORD not in json.dumps(subjects.wire)


def test_the_services_secret_carries_the_registry_login_as_a_secret(project: Project) -> None:
    run = program_run(project)
    api = run.one(SECRET, "api-kafka-credentials")
    assert api.inputs["stringData"][SCHEMA_REGISTRY_USERNAME_ENV] == "platform"
    assert api.inputs["stringData"][SCHEMA_REGISTRY_PASSWORD_ENV] == REGISTRY_PASSWORD
    assert is_secret_on_the_wire(api.wire["stringData"]) or is_secret_on_the_wire(
        api.wire["stringData"].get(SCHEMA_REGISTRY_PASSWORD_ENV)
    )
    config_map = run.one("kubernetes:core/v1:ConfigMap", "api-kafka-env")
    assert config_map.inputs["data"][SCHEMA_REGISTRY_URL_ENV] == URL
    assert (
        SCHEMA_REGISTRY_URL_ENV
        not in run.one("kubernetes:core/v1:ConfigMap", "guardian-kafka-env").inputs["data"]
    )


def test_a_protected_stack_keeps_its_subjects(project: Project) -> None:
    (subjects,) = program_run(project, protect=True).of_type(SUBJECTS)
    assert subjects.protect and subjects.retain_on_delete
    assert subjects.inputs["removal"] == "keep"


# --- drift reads the registry before the cluster ------------------------------------------------


def drift(project: Project, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("SCHEMA_REGISTRY")}
    return subprocess.run(
        [sys.executable, "-m", "infra", "--project-dir", str(project.root), "drift", "--stack", "staging"],
        capture_output=True,
        text=True,
        env=environ | env,
        check=False,
        timeout=120,
    )


def test_drift_without_the_registry_password_exits_2_naming_it(project: Project) -> None:
    done = drift(staging(project, {"url": URL, "username": "platform"}))
    assert done.returncode == 2
    assert (
        f"SCHEMA_REGISTRY_PASSWORD: required to read schema registry {URL} as 'platform' "
        f"(`pulumi config get {SCHEMA_REGISTRY_PASSWORD_KEY}`)"
    ) in done.stderr


def test_drift_with_a_registry_that_does_not_answer_exits_1(project: Project) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    done = drift(staging(project, {"url": nowhere}, password=False))
    assert done.returncode == 1
    assert f"schema registry {nowhere} did not answer" in done.stderr


def test_an_msk_stack_registers_its_subjects_too(project: Project) -> None:
    with_schema(project, record(MOOD, name="MoodCreated"))
    settings = yaml.safe_load(MSK_EXAMPLE.read_text())["config"][SETTINGS_KEY]
    settings["schemas"] = {"registry": {"url": URL}, "compatibility": "FULL"}
    run = run_program(project.root, "prod-msk", settings=settings)
    (subjects,) = run.of_type(SUBJECTS)
    assert subjects.inputs["subjects"][SUBJECT]["compatibility"] == "FULL"
    assert "password_config" not in subjects.inputs, "a registry without a user has no password"
    assert subjects.protect, "the MSK example is a production stack"


def preview_of_staging(project: Project) -> Project:
    """`staging` (an existing cluster with a registry) as the file pr-<n> previews start from."""
    staging(project, {"url": URL})
    project.write("Pulumi.dev.yaml", (project.root / "Pulumi.staging.yaml").read_text())
    return project


def test_a_preview_registers_its_prefixed_subjects_in_the_base_registry(project: Project) -> None:
    """Topic naming: the preview's subject follows its prefixed topic, as its clients' does."""
    plan = preview_of_staging(project).plan("pr-42")
    assert [s.subject for s in plan.subjects] == [f"pr-42.{SUBJECT}"]
    assert plan.schema_registry is not None and plan.schema_registry.url == URL
    assert plan.schema_registry.adopt == []
    assert plan.service("api").env[SCHEMA_REGISTRY_URL_ENV] == URL
    run = run_program(project.root, "pr-42", settings=stack_settings(project.root, "dev"))
    (subjects,) = run.of_type(SUBJECTS)
    assert set(subjects.inputs["subjects"]) == {f"pr-42.{SUBJECT}"}


def test_a_preview_under_record_naming_registers_nothing_and_says_why(project: Project) -> None:
    """Record naming: the subject is the base stack's own (no topic carries the prefix), so the
    preview neither registers it nor hands its services the registry."""
    preview_of_staging(project).edit_topology(lambda t: t.update(subject_name_strategy="record"))
    plan = project.plan("pr-42")
    assert [s.subject for s in plan.subjects] == ["aura360.MoodCreated"]
    assert plan.schema_registry is None
    assert all(SCHEMA_REGISTRY_URL_ENV not in s.env for s in plan.services)
    assert any(
        w.startswith("topology.yaml: subject_name_strategy: record: stack 'pr-42' registers none")
        and "(e.g. 'aura360.MoodCreated') has no topic to carry the prefix 'pr-42.'" in w
        for w in plan.warnings
    ), plan.warnings
    base = project.plan("staging")
    assert base.schema_registry is not None and not [w for w in base.warnings if "subject" in w]
    run = run_program(project.root, "pr-42", settings=stack_settings(project.root, "dev"))
    assert not run.of_type(SUBJECTS)
