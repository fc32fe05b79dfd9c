"""The registry core and the `SchemaSubjects` dynamic provider on a real Confluent-compatible
Schema Registry (Apicurio's ccompat API, started once per session by
tools/schema-registry/run-registry): what each call does to the registry, what a level refuses,
what the provider refuses before changing anything, and what it never deletes."""

from __future__ import annotations

import base64
import http.server
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from infra.live.kafka_broker import Broker
from infra.live.schema_registry import (
    IncompatibleSchema,
    RegistryForbidden,
    RegistryLogin,
    RegistryUnreachable,
    SchemaRegistry,
)
from infra.plan.model import SCHEMA_REGISTRY_OUTPUT
from infra.program.previous_deployment import (
    SCHEMA_SUBJECTS_OUTPUT,
    PreviousDeployment,
)
from infra.program.registry_preflight import schema_registry_problems
from infra.program.schema_registry_provider import SubjectsProvider, SubjectsRefused
from tests.integration.kafka_apps import free_port
from tests.integration.test_import_and_drift import drift
from tests.project_files import Project, existing_cluster_stack_file
from tests.test_event_schemas import MOOD, with_schema
from tests.test_event_schemas import record as event_record


def record(*fields: dict[str, Any], name: str = "OrderPlaced") -> str:
    return json.dumps({"type": "record", "name": name, "namespace": "tests", "fields": list(fields)})


ID = {"name": "order_id", "type": "string"}
AMOUNT = {"name": "amount", "type": "long"}
AMOUNT_DEFAULT = {"name": "amount", "type": "long", "default": 0}
V1 = record(ID)
V2_COMPATIBLE = record(ID, AMOUNT_DEFAULT)  # a new field with a default: BACKWARD allows it
V2_BREAKING = record(ID, AMOUNT)  # a new field without one: BACKWARD refuses it


@pytest.fixture
def registry(schema_registry: str) -> SchemaRegistry:
    return SchemaRegistry(RegistryLogin(url=schema_registry))


@pytest.fixture
def subject() -> str:
    """A subject no other test uses (the registry is shared by the session)."""
    return f"t{uuid.uuid4().hex[:8]}.orders-value"


def test_a_subject_registered_read_back_and_soft_deleted(registry: SchemaRegistry, subject: str) -> None:
    assert registry.latest(subject) is None
    registry.set_compatibility(subject, "BACKWARD")
    first = registry.register(subject, V1)
    assert registry.register(subject, V1) == first, "the same schema again is the same version"
    second = registry.register(subject, V2_COMPATIBLE, level="BACKWARD")
    latest = registry.latest(subject)
    assert latest is not None
    assert (latest.subject, latest.version, latest.schema_id) == (subject, 2, second)
    assert json.loads(latest.schema) == json.loads(V2_COMPATIBLE)
    assert subject in registry.subjects()

    assert registry.delete_subject(subject) == [1, 2]
    assert subject not in registry.subjects()
    assert subject in registry.subjects(deleted=True), "a soft delete keeps the versions"
    assert registry.latest(subject) is None
    assert registry.delete_subject(subject) == [], "deleting it again changes nothing"


def test_each_subject_keeps_its_own_level(registry: SchemaRegistry, subject: str) -> None:
    strict, loose = subject, subject.replace("orders", "audit")
    registry.set_compatibility(strict, "BACKWARD")
    registry.set_compatibility(loose, "NONE")
    for name in (strict, loose):
        registry.register(name, V1)
    assert (registry.compatibility(strict), registry.compatibility(loose)) == ("BACKWARD", "NONE")

    registry.register(loose, V2_BREAKING, level="NONE")
    with pytest.raises(IncompatibleSchema) as refused:
        registry.register(strict, V2_BREAKING, level="BACKWARD")
    message = str(refused.value)
    assert f"subject '{strict}'" in message and "compatibility level BACKWARD" in message
    assert refused.value.status == 409
    latest = registry.latest(strict)
    assert latest is not None and latest.version == 1, "nothing was registered"


def test_a_registry_that_does_not_answer_is_reported_as_such() -> None:
    nowhere = SchemaRegistry(RegistryLogin(url=f"http://127.0.0.1:{free_port()}/apis/ccompat/v7"))
    with pytest.raises(RegistryUnreachable, match="did not answer"):
        nowhere.subjects()


GATE_USER, GATE_PASSWORD = "orders-registry", "s3cret-registry-login"  # pragma: allowlist secret
WRONG_PASSWORD = "not-it"  # pragma: allowlist secret


@contextmanager
def basic_auth_gate(upstream: str, forbidden: str = "") -> Iterator[tuple[str, list[str | None]]]:
    """The real registry behind HTTP basic auth, answering as Confluent's registry does with
    `authentication.method=BASIC` (401, `{"error_code": 401, ...}`, a `WWW-Authenticate`
    challenge), and with 403 and a JSON error body (what its authorizer answers a login without
    the grant, e.g. SUBJECT_COMPATIBILITY_WRITE for PUT /config/<subject>) to the right login on
    any path under ``forbidden``; yields the gate's URL and the Authorization header of every
    request."""
    expected = "Basic " + base64.b64encode(f"{GATE_USER}:{GATE_PASSWORD}".encode()).decode()
    seen: list[str | None] = []
    target = urllib.parse.urlsplit(upstream)

    class Gate(http.server.BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def _forward(self) -> None:
            seen.append(self.headers.get("Authorization"))
            if self.headers.get("Authorization") != expected:
                body = b'{"error_code":401,"message":"Unauthorized"}'
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="SchemaRegistry"')
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if forbidden and self.path.startswith(target.path + forbidden):
                body = b'{"error_code":403,"message":"User is denied operation Write on Subject"}'
                self.send_response(403)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            length = int(self.headers.get("Content-Length") or 0)
            request = urllib.request.Request(
                f"{target.scheme}://{target.netloc}{self.path}",
                data=self.rfile.read(length) if length else None,
                headers={k: v for k, v in self.headers.items() if k in ("Accept", "Content-Type")},
                method=self.command,
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    status, body = answer.status, answer.read()
            except urllib.error.HTTPError as refused:
                status, body = refused.code, refused.read()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _forward

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gate)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}{target.path}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_registry_behind_basic_auth_gets_the_login_on_every_call_and_a_wrong_one_is_named(
    schema_registry: str, subject: str
) -> None:
    with basic_auth_gate(schema_registry) as (url, seen):
        registry = SchemaRegistry(RegistryLogin(url=url, username=GATE_USER, password=GATE_PASSWORD))
        registry.set_compatibility(subject, "BACKWARD")
        registry.register(subject, V1)
        latest = registry.latest(subject)
        assert latest is not None and json.loads(latest.schema) == json.loads(V1)
        assert len(seen) >= 3 and all(header and header.startswith("Basic ") for header in seen)

        wrong = SchemaRegistry(RegistryLogin(url=url, username=GATE_USER, password=WRONG_PASSWORD))
        with pytest.raises(RegistryUnreachable) as refused:
            wrong.latest(subject)
        message = str(refused.value)
        assert f"refused the login as '{GATE_USER}' (HTTP 401)" in message
        assert WRONG_PASSWORD not in message and GATE_PASSWORD not in message

        anonymous = SchemaRegistry(RegistryLogin(url=url))
        with pytest.raises(RegistryUnreachable, match=r"refused the login \(HTTP 401\)"):
            anonymous.subjects()


def test_a_request_the_login_is_not_allowed_is_named_as_such_not_as_a_refused_login(
    schema_registry: str, subject: str
) -> None:
    with basic_auth_gate(schema_registry, forbidden=f"/config/{subject}") as (url, _):
        registry = SchemaRegistry(RegistryLogin(url=url, username=GATE_USER, password=GATE_PASSWORD))
        registry.register(subject, V1)
        with pytest.raises(RegistryForbidden) as forbidden:
            registry.set_compatibility(subject, "FULL")
    message = str(forbidden.value)
    assert message.startswith(
        f"schema registry {url} does not allow PUT /config/{subject} as '{GATE_USER}' (HTTP 403): "
        "User is denied operation Write on Subject"
    )
    assert "refused the login" not in message and forbidden.value.status == 403


# --- the dynamic provider, called as the engine's plugin calls it -----------------------------


def props(url: str, subjects: dict[str, tuple[str, str]], **extra: Any) -> dict[str, Any]:
    return {
        "registry": {"url": url, "username": None},
        "password_config": None,
        "subjects": {
            name: {"schema": schema, "compatibility": level} for name, (schema, level) in subjects.items()
        },
        "adopt": [],
        "removal": "delete",
        **extra,
    }


def test_the_provider_registers_updates_and_soft_deletes_its_subjects(
    schema_registry: str, registry: SchemaRegistry, subject: str
) -> None:
    provider = SubjectsProvider()
    other = subject.replace("orders", "payments")
    created = provider.create(props(schema_registry, {subject: (V1, "FULL"), other: (V1, "BACKWARD")}))
    assert created.outs is not None
    assert {registry.compatibility(subject), registry.compatibility(other)} == {"FULL", "BACKWARD"}
    assert registry.compatibility(subject) == "FULL"

    news = props(schema_registry, {subject: (V2_COMPATIBLE, "FULL")})
    assert provider.diff("subjects", created.outs, news).changes
    provider.update("subjects", created.outs, news)
    latest = registry.latest(subject)
    assert latest is not None and latest.version == 2
    assert other not in registry.subjects() and other in registry.subjects(deleted=True)

    read = provider.read("subjects", news)
    assert read.outs is not None and read.outs["subjects"] == news["subjects"], "nothing drifted"

    provider.delete("subjects", news)
    assert subject not in registry.subjects() and subject in registry.subjects(deleted=True)


def test_an_incompatible_version_is_refused_naming_the_subject_and_its_level_is_kept(
    schema_registry: str, registry: SchemaRegistry, subject: str
) -> None:
    provider = SubjectsProvider()
    olds = props(schema_registry, {subject: (V1, "BACKWARD")})
    provider.create(olds)
    # A breaking schema at the same level, then at a level changed with it: the level is put back.
    with pytest.raises(IncompatibleSchema, match=rf"subject '{re.escape(subject)}'.*level BACKWARD"):
        provider.update("subjects", olds, props(schema_registry, {subject: (V2_BREAKING, "BACKWARD")}))
    with pytest.raises(IncompatibleSchema, match=rf"subject '{re.escape(subject)}'.*level FORWARD"):
        provider.update("subjects", olds, props(schema_registry, {subject: (record(), "FORWARD")}))
    assert registry.compatibility(subject) == "BACKWARD"
    latest = registry.latest(subject)
    assert latest is not None and latest.version == 1


def test_a_subject_of_someone_else_is_refused_until_adopted(
    schema_registry: str, registry: SchemaRegistry, subject: str
) -> None:
    registry.register(subject, V1)
    mine = subject.replace("orders", "refunds")
    provider = SubjectsProvider()
    planned = props(schema_registry, {mine: (V1, "BACKWARD"), subject: (V2_COMPATIBLE, "BACKWARD")})
    with pytest.raises(
        SubjectsRefused, match=rf"subject {re.escape(subject)} already exists .*\(settings.adopt.subjects\)"
    ):
        provider.create(planned)
    assert mine not in registry.subjects(), "nothing was changed"
    latest = registry.latest(subject)
    assert latest is not None and latest.version == 1

    provider.create({**planned, "adopt": [subject]})
    latest = registry.latest(subject)
    assert latest is not None and latest.version == 2 and registry.compatibility(subject) == "BACKWARD"


def test_a_refused_version_puts_back_an_adopted_subjects_own_level_or_its_absence(
    schema_registry: str, registry: SchemaRegistry, subject: str
) -> None:
    levelled, unlevelled = subject, subject.replace("orders", "returns")
    registry.set_compatibility(levelled, "FORWARD")  # someone else's subjects, one with a level of its own
    for name in (levelled, unlevelled):
        registry.register(name, V1)
    provider = SubjectsProvider()
    with pytest.raises(IncompatibleSchema, match=rf"subject '{re.escape(levelled)}'.*level BACKWARD"):
        provider.create(props(schema_registry, {levelled: (V2_BREAKING, "BACKWARD")}, adopt=[levelled]))
    assert registry.compatibility(levelled) == "FORWARD", "its own level, put back"

    # FORWARD refuses a removed field without a default; its level is then removed again, and the
    # registry's default (BACKWARD, tools/schema-registry/run-registry) judges the next version.
    with pytest.raises(IncompatibleSchema, match=rf"subject '{re.escape(unlevelled)}'.*level FORWARD"):
        provider.create(props(schema_registry, {unlevelled: (record(), "FORWARD")}, adopt=[unlevelled]))
    with pytest.raises(IncompatibleSchema):
        registry.register(unlevelled, V2_BREAKING)  # FORWARD (or NONE) would take it
    for name in (levelled, unlevelled):
        latest = registry.latest(name)
        assert latest is not None and latest.version == 1


def test_a_failed_create_leaves_no_level_behind(
    schema_registry: str, registry: SchemaRegistry, subject: str
) -> None:
    broken = subject.replace("orders", "broken")
    planned = props(schema_registry, {subject: (V1, "FULL"), broken: ('{"type": "record"}', "FULL")})
    with pytest.raises(Exception, match=broken):
        SubjectsProvider().create(planned)
    assert "FULL" not in (registry.compatibility(subject), registry.compatibility(broken))


def test_a_protected_stack_releases_subjects_and_never_deletes_them(
    schema_registry: str, registry: SchemaRegistry, subject: str
) -> None:
    provider = SubjectsProvider()
    other = subject.replace("orders", "invoices")
    olds = props(schema_registry, {subject: (V1, "BACKWARD"), other: (V1, "BACKWARD")}, removal="keep")
    provider.create(olds)
    provider.update("subjects", olds, props(schema_registry, {subject: (V1, "BACKWARD")}, removal="keep"))
    provider.delete("subjects", olds)
    assert {subject, other} <= set(registry.subjects())


def test_a_failed_create_soft_deletes_what_it_registered(
    schema_registry: str, registry: SchemaRegistry, subject: str
) -> None:
    provider = SubjectsProvider()
    broken = subject.replace("orders", "broken")
    # Sorted after `subject` in the inputs: the first is registered, then the second fails.
    planned = props(schema_registry, {subject: (V1, "BACKWARD"), broken: ('{"type": "record"}', "BACKWARD")})
    with pytest.raises(Exception, match=broken):
        provider.create(planned)
    assert subject not in registry.subjects()


def registry_project(tmp_path: Path, url: str, domain: str, adopt: list[str] | None = None) -> Project:
    """An existing-cluster stack under a domain of its own, whose one subject is in ``url``."""
    tmp_path.mkdir(exist_ok=True)
    project = Project(tmp_path).edit_topology(lambda topology: topology.update(domain=domain))
    with_schema(project, event_record(MOOD, name="MoodCreated"))
    project.write("Pulumi.staging.yaml", existing_cluster_stack_file())
    project.edit_settings(
        "staging",
        lambda s: s.update(schemas={"registry": {"url": url}}, adopt={"subjects": adopt or []}),
    )
    return project


# --- drift: the registry against the plan ------------------------------------------------------


def test_drift_reports_a_subject_changed_or_deleted_by_hand(
    broker: Broker, schema_registry: str, registry: SchemaRegistry, tmp_path: Path
) -> None:
    project = registry_project(tmp_path, schema_registry, f"sr{uuid.uuid4().hex[:6]}")
    plan = project.plan("staging")
    (subject,) = plan.subjects
    # Registered by the shipped program's provider, with the inputs the program gives it.
    SubjectsProvider().create(
        props(schema_registry, {subject.subject: (subject.definition, subject.compatibility)})
    )
    _, report = drift(broker, project.root, "staging")
    assert (report["missing_subjects"], report["different_subjects"]) == ([], [])

    registry.set_compatibility(subject.subject, "NONE")
    changed = event_record(MOOD, {"name": "note", "type": "string", "default": ""}, name="MoodCreated")
    registry.register(subject.subject, changed)
    code, report = drift(broker, project.root, "staging")
    assert code == 3
    assert [(d["setting"], d["planned"]) for d in report["different_subjects"]] == [
        ("compatibility", "BACKWARD"),
        ("schema", "schemas/mood.avsc"),
    ]
    level, schema = (d["live"] for d in report["different_subjects"])
    assert level == "NONE" and "note" in schema, "the registered version, as the registry keeps it"

    registry.delete_subject(subject.subject)
    _, report = drift(broker, project.root, "staging")
    assert report["missing_subjects"] == [subject.subject] and report["different_subjects"] == []


# --- the preflight: what the provider would refuse, refused before any change -------------------


def test_the_preflight_refuses_a_subject_of_someone_else_unless_the_stack_has_it(
    schema_registry: str, registry: SchemaRegistry, tmp_path: Path
) -> None:
    domain = f"sr{uuid.uuid4().hex[:6]}"
    plan = registry_project(tmp_path / "plain", schema_registry, domain).plan("staging")
    (subject,) = plan.subjects
    login = RegistryLogin(url=schema_registry)
    nothing = PreviousDeployment()
    assert schema_registry_problems(login, plan, nothing) == [], "a new subject"

    registry.register(subject.subject, V1)  # someone else's schema under the stack's subject
    (problem,) = schema_registry_problems(login, plan, nothing)
    assert problem.startswith(
        f"subject {subject.subject} already exists in schema registry {schema_registry}"
    )
    deployed = PreviousDeployment(
        {SCHEMA_REGISTRY_OUTPUT: schema_registry, SCHEMA_SUBJECTS_OUTPUT: [subject.subject]}
    )
    assert schema_registry_problems(login, plan, deployed) == [], "the stack's last deployment had it"
    elsewhere = PreviousDeployment(
        {SCHEMA_REGISTRY_OUTPUT: "https://other", SCHEMA_SUBJECTS_OUTPUT: [subject.subject]}
    )
    assert schema_registry_problems(login, plan, elsewhere) != [], "in another registry"
    adopting = registry_project(tmp_path / "adopt", schema_registry, domain, [subject.subject]).plan(
        "staging"
    )
    assert schema_registry_problems(login, adopting, nothing) == [], "adopted on purpose"


def test_the_preflight_refuses_a_foreign_subject_even_with_the_planned_schema_and_reports_no_answer(
    schema_registry: str, registry: SchemaRegistry, tmp_path: Path
) -> None:
    plan = registry_project(tmp_path / "plain", schema_registry, f"sr{uuid.uuid4().hex[:6]}").plan("staging")
    (subject,) = plan.subjects
    # Someone else registered exactly the planned schema: the provider refuses it, so must `preview`.
    registry.register(subject.subject, subject.definition)
    (problem,) = schema_registry_problems(RegistryLogin(url=schema_registry), plan, PreviousDeployment())
    assert problem.startswith(
        f"subject {subject.subject} already exists in schema registry {schema_registry}"
    )
    assert "settings.adopt.subjects" in problem
    with pytest.raises(SubjectsRefused, match=re.escape(subject.subject)):
        SubjectsProvider().create(
            props(schema_registry, {subject.subject: (subject.definition, subject.compatibility)})
        )
    nowhere = f"http://127.0.0.1:{free_port()}"
    (problem,) = schema_registry_problems(RegistryLogin(url=nowhere), plan, PreviousDeployment())
    assert f"schema registry {nowhere} did not answer" in problem
