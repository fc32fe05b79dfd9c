"""Event schemas: Avro files named in topology.yaml, refused with the key path when wrong,
planned as Schema Registry subjects per stack, and every change judged by `diff` with Apache
Avro's own reader/writer compatibility, naming the services it would break."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from infra.plan.change_review import Severity
from infra.plan.schema_review import incompatibilities
from tests.project_files import Project
from tests.test_change_review import diff, git


def record(*fields: dict[str, Any], name: str = "OrderPlaced") -> str:
    return json.dumps({"type": "record", "name": name, "namespace": "aura360", "fields": list(fields)})


ID = {"name": "order_id", "type": "string"}
AMOUNT = {"name": "amount", "type": "long"}
AMOUNT_DEFAULT = {"name": "amount", "type": "long", "default": 0}
CURRENCY = {"name": "currency", "type": "string"}
CURRENCY_DEFAULT = {"name": "currency", "type": "string", "default": "EUR"}
INT_COUNT = {"name": "count", "type": "int"}
LONG_COUNT = {"name": "count", "type": "long"}
STATUS_ABC = {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["A", "B", "C"]}}
STATUS_AB = {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["A", "B"]}}

# (case, level, new schema, versions in use latest first, reasons expected; () = compatible)
CASES: list[tuple[str, str, str, list[str], tuple[str, ...]]] = [
    ("added with a default", "BACKWARD", record(ID, AMOUNT_DEFAULT), [record(ID)], ()),
    (
        "added without a default",
        "BACKWARD",
        record(ID, AMOUNT),
        [record(ID)],
        ("new-reads-old: field amount added without a default",),
    ),
    ("removed, backward", "BACKWARD", record(ID), [record(ID, AMOUNT)], ()),
    (
        "removed without a default, forward",
        "FORWARD",
        record(ID),
        [record(ID, AMOUNT)],
        ("old-reads-new: field amount removed without a default",),
    ),
    ("removed with a default, forward", "FORWARD", record(ID), [record(ID, AMOUNT_DEFAULT)], ()),
    # Avro merges its findings' messages into one set: two fields are one reason, not two.
    (
        "two removed without a default, forward",
        "FORWARD",
        record(ID),
        [record(ID, AMOUNT, CURRENCY)],
        ("old-reads-new: field amount, currency removed without a default",),
    ),
    # Findings of two kinds: said together, no message put under the other kind's words.
    (
        "one retyped, one removed, forward",
        "FORWARD",
        record(ID, {"name": "amount", "type": "string"}),
        [record(ID, AMOUNT, CURRENCY)],
        (
            "old-reads-new: reader field missing default value, type mismatch at /fields/1/type, "
            "/fields/2: currency, reader type: long not compatible with writer type: string",
        ),
    ),
    ("added without a default, forward", "FORWARD", record(ID, AMOUNT), [record(ID)], ()),
    ("added with a default, full", "FULL", record(ID, AMOUNT_DEFAULT), [record(ID)], ()),
    (
        "added without a default, full",
        "FULL",
        record(ID, AMOUNT),
        [record(ID)],
        ("new-reads-old: field amount added without a default",),
    ),
    ("int widened to long, backward", "BACKWARD", record(ID, LONG_COUNT), [record(ID, INT_COUNT)], ()),
    (
        "int widened to long, forward",
        "FORWARD",
        record(ID, LONG_COUNT),
        [record(ID, INT_COUNT)],
        (
            "old-reads-new: type mismatch at /fields/1/type: "
            "reader type: int not compatible with writer type: long",
        ),
    ),
    (
        "enum symbol dropped, backward",
        "BACKWARD",
        record(ID, STATUS_AB),
        [record(ID, STATUS_ABC)],
        ("new-reads-old: enum symbol(s) C unknown to the reader",),
    ),
    # v3 reads v2 (which has currency) but not v1 (which lacks it): only the transitive level sees it.
    (
        "default dropped, backward",
        "BACKWARD",
        record(ID, CURRENCY),
        [record(ID, CURRENCY_DEFAULT), record(ID)],
        (),
    ),
    (
        "default dropped, backward transitive",
        "BACKWARD_TRANSITIVE",
        record(ID, CURRENCY),
        [record(ID, CURRENCY_DEFAULT), record(ID)],
        ("new-reads-old: field currency added without a default",),
    ),
    # v1 readers require `amount`; v2 gave it a default; v3 drops it: v2 copes, v1 does not.
    (
        "dropped after a default, forward",
        "FORWARD",
        record(ID),
        [record(ID, AMOUNT_DEFAULT), record(ID, AMOUNT)],
        (),
    ),
    (
        "dropped after a default, forward transitive",
        "FORWARD_TRANSITIVE",
        record(ID),
        [record(ID, AMOUNT_DEFAULT), record(ID, AMOUNT)],
        ("old-reads-new: field amount removed without a default",),
    ),
    (
        "dropped after a default, full transitive",
        "FULL_TRANSITIVE",
        record(ID),
        [record(ID, AMOUNT_DEFAULT), record(ID, AMOUNT)],
        ("old-reads-new: field amount removed without a default",),
    ),
    ("anything goes", "NONE", record(ID, AMOUNT), [record(ID, CURRENCY)], ()),
]


@pytest.mark.parametrize(
    ("level", "new", "in_use", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_compatibility_with_the_real_avro_library(
    level: str, new: str, in_use: list[str], expected: tuple[str, ...]
) -> None:
    found = incompatibilities(level, new, [(f"v{len(in_use) - i}", text) for i, text in enumerate(in_use)])
    assert tuple(f"{f.direction}: {reason}" for f in found for reason in f.reasons) == expected


# --- the topology, the plan and `diff` ---------------------------------------------------------


def with_schema(project: Project, schema: str, level: str | None = None) -> Project:
    """context-aggregator publishes `user.mood.created` on user.events, with this schema."""
    (project.root / "schemas").mkdir(exist_ok=True)
    project.write("schemas/mood.avsc", schema)

    def name_it(topology: dict[str, Any]) -> None:
        topology["events"]["user.mood.created"]["schema"] = "schemas/mood.avsc"

    project.edit_topology(name_it)
    if level is not None:
        project.edit_settings("prod", lambda s: s.update(schemas={"compatibility": level}))
    return project


MOOD = {"name": "user_id", "type": "string"}
SCORE = {"name": "score", "type": "int"}


def test_a_subject_per_event_schema_with_its_writers_and_readers(project: Project) -> None:
    plan = with_schema(project, record(MOOD, SCORE, name="MoodCreated")).plan("prod")
    (subject,) = plan.subjects
    assert subject.subject == "aura360.user.events-value"
    assert subject.compatibility == "BACKWARD"
    assert subject.events == ["user.mood.created"]
    assert subject.producers == ["api"] and subject.consumers == ["context-aggregator"]
    assert json.loads(subject.definition)["name"] == "MoodCreated"
    shown = subprocess.run(
        [sys.executable, "-m", "infra", "--project-dir", str(project.root), "plan", "--stack", "prod"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (
        "aura360.user.events-value  schemas/mood.avsc  BACKWARD       api        context-aggregator" in shown
    )
    preview = project.plan("pr-42")
    assert [s.subject for s in preview.subjects] == ["pr-42.aura360.user.events-value"]


def test_record_naming_strategies(project: Project) -> None:
    with_schema(project, record(MOOD, name="MoodCreated"))
    project.edit_topology(lambda t: t.update(subject_name_strategy="topic_record"))
    assert [s.subject for s in project.plan("prod").subjects] == ["aura360.user.events-aura360.MoodCreated"]
    project.edit_topology(lambda t: t.update(subject_name_strategy="record"))
    assert [s.subject for s in project.plan("prod").subjects] == ["aura360.MoodCreated"]


def validate(project: Project, stack: str = "prod") -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "infra", "--project-dir", str(project.root), "validate", "--stack", stack],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, done.stderr


@pytest.mark.parametrize(
    ("case", "schema_file", "text", "expected"),
    [
        (
            "missing",
            "schemas/nope.avsc",
            None,
            """topology.yaml: events."user.mood.created".schema: 'schemas/nope.avsc' does not exist""",
        ),
        ("not avro", "schemas/mood.json", "{}", "'schemas/mood.json': schemas are Avro files (.avsc)"),
        (
            "invalid",
            "schemas/mood.avsc",
            '{"type": "record", "name": "M", "fields": [{"name": "a", "type": "strin"}]}',
            "'schemas/mood.avsc' is not a valid Avro schema: Type property \"strin\" not a valid Avro schema",
        ),
        ("outside", "../mood.avsc", "{}", "a path inside the project"),
        (
            "key field",
            "schemas/mood.avsc",
            record({"name": "id", "type": "string"}, name="MoodCreated"),
            """topology.yaml: events."user.mood.created".key: key field(s) user_id not in the fields of """
            "aura360.MoodCreated",
        ),
    ],
)
def test_a_bad_schema_exits_2_naming_the_key_path(
    project: Project, case: str, schema_file: str, text: str | None, expected: str
) -> None:
    if text is not None:
        (project.root / schema_file).parent.mkdir(parents=True, exist_ok=True)
        (project.root / schema_file).write_text(text)
    project.edit_topology(lambda t: t["events"]["user.mood.created"].update(schema=schema_file))
    code, stderr = validate(project)
    assert code == 2 and expected in stderr, stderr


def test_bad_levels_and_unknown_subjects_exit_2(project: Project) -> None:
    with_schema(project, record(MOOD, name="MoodCreated"))
    project.edit_settings("prod", lambda s: s.update(schemas={"compatibility": "SIDEWAYS"}))
    code, stderr = validate(project)
    assert (
        code == 2
        and "Pulumi.prod.yaml: settings.schemas.compatibility:" in stderr
        and "FULL_TRANSITIVE" in stderr
    )
    project.edit_settings("prod", lambda s: s.update(schemas={"subjects": {"aura360.nope-value": "FULL"}}))
    code, stderr = validate(project)
    assert code == 2
    assert (
        """settings.schemas.subjects."aura360.nope-value": not a subject of this stack """
        "(its subjects: aura360.user.events-value)"
    ) in stderr


def test_two_schemas_cannot_share_a_topic_subject(project: Project) -> None:
    with_schema(project, record(MOOD, name="MoodCreated"))
    project.write("schemas/activity.avsc", record(MOOD, name="ActivityCreated"))
    project.edit_topology(
        lambda t: t["events"]["user.activity.created"].update(schema="schemas/activity.avsc")
    )
    code, stderr = validate(project)
    assert code == 2
    assert (
        "subject 'aura360.user.events-value' already holds event" in stderr
        and "subject_name_strategy: record" in stderr
    )
    project.edit_topology(lambda t: t.update(subject_name_strategy="record"))
    assert validate(project)[0] == 0


def commit(project: Project, message: str) -> None:
    git(project.root, "add", "-A")
    git(project.root, "-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", message)


@pytest.fixture
def schema_repository(project: Project) -> Project:
    with_schema(project, record(MOOD, SCORE, name="MoodCreated"), level="FORWARD")
    git(project.root, "init", "-q")
    commit(project, "base")
    return project


def test_diff_refuses_a_breaking_schema_change_naming_its_consumers(schema_repository: Project) -> None:
    schema_repository.write(
        "schemas/mood.avsc", record(MOOD, name="MoodCreated")
    )  # score removed, no default
    result = diff(schema_repository.root, "--base", "HEAD", "--stack", "prod", "--format", "json")
    assert result.returncode == 5, result.stderr
    (finding,) = [f for f in json.loads(result.stdout)["findings"] if f["rule"].startswith("schema-")]
    assert finding["rule"] == "schema-incompatible" and finding["severity"] == Severity.ERROR.name.lower()
    assert finding["subject"] == "aura360.user.events-value"
    assert finding["services"] == ["api", "context-aggregator"]
    assert (
        "context-aggregator (reading with the HEAD version) cannot read the new records: "
        "field score removed without a default"
    ) in finding["detail"]
    assert "the registry refuses the new version at FORWARD, so api cannot register it" in finding["detail"]


def test_diff_names_the_consumers_a_backward_breaking_change_breaks(schema_repository: Project) -> None:
    # BACKWARD: consumers move to the new schema first, and it cannot read what `api` wrote.
    schema_repository.edit_settings("prod", lambda s: s.update(schemas={"compatibility": "BACKWARD"}))
    commit(schema_repository, "backward")
    schema_repository.write(
        "schemas/mood.avsc", record(MOOD, SCORE, {"name": "note", "type": "string"}, name="MoodCreated")
    )
    result = diff(schema_repository.root, "--base", "HEAD", "--stack", "prod", "--format", "json")
    assert result.returncode == 5, result.stderr
    (finding,) = [f for f in json.loads(result.stdout)["findings"] if f["rule"].startswith("schema-")]
    assert (
        "context-aggregator (upgrading to the new version) cannot read the records the HEAD version "
        "wrote: field note added without a default"
    ) in finding["detail"]
    assert "the registry refuses the new version at BACKWARD, so api cannot register it" in finding["detail"]


def test_diff_passes_a_compatible_change_and_a_new_subject(schema_repository: Project) -> None:
    schema_repository.write(
        "schemas/mood.avsc", record(MOOD, SCORE, {"name": "note", "type": "string"}, name="MoodCreated")
    )
    result = diff(schema_repository.root, "--base", "HEAD", "--stack", "prod", "--format", "json")
    assert result.returncode == 0, result.stdout
    rules = {f["rule"] for f in json.loads(result.stdout)["findings"]}
    assert rules == {"schema-compatible"}


def test_diff_checks_every_earlier_version_at_a_transitive_level(schema_repository: Project) -> None:
    # v2 gives score a default, v3 drops it: FORWARD (v2 reads v3) passes, v1's readers do not.
    schema_repository.write(
        "schemas/mood.avsc", record(MOOD, {"name": "score", "type": "int", "default": 0}, name="MoodCreated")
    )
    commit(schema_repository, "v2")
    schema_repository.write("schemas/mood.avsc", record(MOOD, name="MoodCreated"))
    assert diff(schema_repository.root, "--base", "HEAD", "--stack", "prod").returncode == 0
    schema_repository.edit_settings(
        "prod", lambda s: s.update(schemas={"compatibility": "FORWARD_TRANSITIVE"})
    )
    result = diff(schema_repository.root, "--base", "HEAD", "--stack", "prod")
    assert result.returncode == 5
    assert "reading with the " in result.stdout and "field score removed without a default" in result.stdout


def schema_findings(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [f for f in json.loads(result.stdout)["findings"] if f["rule"].startswith("schema-")]


def without_schema(topology: dict[str, Any]) -> None:
    del topology["events"]["user.mood.created"]["schema"]


def test_diff_refuses_removing_a_subject_a_remaining_consumer_reads(schema_repository: Project) -> None:
    schema_repository.edit_topology(without_schema)
    result = diff(schema_repository.root, "--base", "HEAD", "--stack", "prod", "--format", "json")
    assert result.returncode == 5, result.stderr
    (finding,) = schema_findings(result)
    assert finding["rule"] == "schema-removed-in-use" and finding["severity"] == Severity.ERROR.name.lower()
    assert finding["subject"] == "aura360.user.events-value"
    assert (
        finding["detail"] == "removed from the topology; context-aggregator still reads aura360.user.events"
    )
    assert finding["services"] == ["api", "context-aggregator"]


def test_diff_notes_removing_a_subject_no_remaining_consumer_reads(schema_repository: Project) -> None:
    def retire(topology: dict[str, Any]) -> None:
        without_schema(topology)
        topology["services"]["context-aggregator"]["consumes"] = []

    schema_repository.edit_topology(retire)
    result = diff(schema_repository.root, "--base", "HEAD", "--stack", "prod", "--format", "json")
    (finding,) = schema_findings(result)
    assert (finding["rule"], finding["severity"]) == ("schema-removed", Severity.SAFE.name.lower())
    assert finding["detail"] == "removed from the topology"


def test_diff_says_a_subject_name_strategy_change_renames_every_subject(schema_repository: Project) -> None:
    schema_repository.edit_topology(lambda t: t.update(subject_name_strategy="record"))
    result = diff(schema_repository.root, "--base", "HEAD", "--stack", "prod", "--format", "json")
    findings = {f["rule"]: f for f in schema_findings(result)}
    renamed = findings["schema-renamed"]
    assert renamed["severity"] == Severity.WARNING.name.lower()
    assert renamed["subject"] == "aura360.user.events-value"
    assert renamed["detail"] == (
        "renamed to aura360.MoodCreated, which starts without the versions of aura360.user.events-value "
        "(subject_name_strategy topic -> record renames every subject)"
    )
    assert findings["schema-added"]["subject"] == "aura360.MoodCreated"


def test_diff_reads_the_versions_that_reached_the_branch_not_a_merged_side_branchs(
    schema_repository: Project,
) -> None:
    schema_repository.edit_settings(
        "prod", lambda s: s.update(schemas={"compatibility": "FORWARD_TRANSITIVE"})
    )
    commit(schema_repository, "transitive")
    # A side branch adds `note` without a default, then gives it one: the branch only ever had the second.
    git(schema_repository.root, "checkout", "-q", "-b", "side")
    note = {"name": "note", "type": "string"}
    schema_repository.write("schemas/mood.avsc", record(MOOD, SCORE, note, name="MoodCreated"))
    commit(schema_repository, "side: note")
    schema_repository.write(
        "schemas/mood.avsc", record(MOOD, SCORE, {**note, "default": ""}, name="MoodCreated")
    )
    commit(schema_repository, "side: note with a default")
    git(schema_repository.root, "checkout", "-q", "-")
    git(
        schema_repository.root,
        "-c",
        "user.email=ci@example.com",
        "-c",
        "user.name=ci",
        "merge",
        "-q",
        "--no-ff",
        "side",
    )
    # Readers of the side branch's first version could not read it (no `note`); none ever ran.
    schema_repository.write(
        "schemas/mood.avsc",
        record(MOOD, SCORE, {"name": "extra", "type": "int", "default": 0}, name="MoodCreated"),
    )
    result = diff(schema_repository.root, "--base", "HEAD", "--stack", "prod", "--format", "json")
    assert result.returncode == 0, result.stdout
    assert [f["rule"] for f in schema_findings(result)] == ["schema-compatible"]
