"""`diff` on a migrating stack: each step named (service, from, to, what changes), the start and
the end of a migration, and an unsafe step refused with validate's reason."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from infra import cli
from infra.plan.change_review import Severity, review
from tests.project_files import Project, migrating_stack_file

STACK = "move"
FILE = f"Pulumi.{STACK}.yaml"
CONSUMERS = dict.fromkeys(("context-aggregator", "context-vectorizer", "vectordb-ingest"), "target")


def _findings(project: Project, before: str, after: str) -> list[tuple[str, str, str, Severity]]:
    project.write(FILE, before)
    base = project.plan(STACK)
    project.write(FILE, after)
    return sorted((f.rule, f.subject, f.detail, f.severity) for f in review(base, project.plan(STACK)))


def test_a_move_is_one_finding_naming_what_changes(project: Project) -> None:
    found = _findings(project, migrating_stack_file({}), migrating_stack_file({"vectordb-ingest": "target"}))
    assert found == [
        (
            "service-moved",
            "vectordb-ingest",
            "vectordb-ingest: source → target: bootstrap, security protocol, credentials",
            Severity.WARNING,
        )
    ]


def test_a_rollback_while_producers_are_on_the_source_is_a_move_back(project: Project) -> None:
    found = _findings(project, migrating_stack_file(CONSUMERS), migrating_stack_file({}))
    assert {(rule, subject) for rule, subject, _, _ in found} == {
        ("service-moved-back", service) for service in CONSUMERS
    }


def test_starting_and_finishing_a_migration(project: Project) -> None:
    everyone = {**CONSUMERS, "api": "target", "guardian": "target"}
    started = _findings(project, _without_migration(project, everyone), migrating_stack_file(everyone))
    assert [(rule, severity) for rule, _, _, severity in started] == [("migration-started", Severity.SAFE)]
    finished = _findings(project, migrating_stack_file(everyone), _without_migration(project, everyone))
    assert [(rule, severity) for rule, _, _, severity in finished] == [
        ("migration-finished", Severity.WARNING)
    ]


def test_removing_the_migration_before_every_service_moved_is_refused(project: Project) -> None:
    found = _findings(project, migrating_stack_file(CONSUMERS), _without_migration(project, CONSUMERS))
    early = [f for f in found if f[0] == "migration-removed-early"]
    assert early and early[0][3] == Severity.ERROR
    assert early[0][2] == "api, guardian still on the source: move them first, remove the migration after"


def _without_migration(project: Project, services: dict[str, str]) -> str:
    document = yaml.safe_load(migrating_stack_file(services))
    del document["config"]["kafka-platform:settings"]["migration"]
    del document["config"]["kafka-platform:migrationSourceAdminPassword"]
    return yaml.safe_dump(document, sort_keys=False)


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_diff_refuses_an_unsafe_step_with_validates_reason(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write(FILE, migrating_stack_file(CONSUMERS))
    _git(project.root, "init", "-q")
    _git(project.root, "add", "-A")
    _git(project.root, "-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "base")
    # A consumer moved back after its producer (api) is on the target: no reverse replication.
    project.write(
        FILE,
        migrating_stack_file(
            {**CONSUMERS, "vectordb-ingest": "source", "api": "target", "guardian": "target"}
        ),
    )
    assert (
        cli.main(
            [
                "--project-dir",
                str(project.root),
                "diff",
                "--base",
                "HEAD",
                "--stack",
                STACK,
                "--format",
                "json",
            ]
        )
        == 2
    )
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert (
        f"{STACK}: {FILE}: settings.migration.services.api: service 'api' writes to target while "
        "'vectordb-ingest' still consumes 'aura360.vectordb.ingest' on source: its events would stop "
        "reaching 'vectordb-ingest' (nothing mirrors target back to source); move consumers to target "
        "first, and back to source last"
    ) in problems
    assert any("service 'context-vectorizer' writes to target while 'vectordb-ingest'" in p for p in problems)
