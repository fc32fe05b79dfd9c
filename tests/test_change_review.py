"""`python -m infra diff`: one test per rule of the severity table on small changes, the git
plumbing (base read with `git show`, no checkout), and the default topology against its own
previous commit."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.plan.change_review import RULES, Severity, review
from infra.plan.model import Plan
from tests.project_files import Project, existing_cluster_stack_file

Edit = Callable[[dict[str, Any]], None]


def changed(
    project: Project, stack: str = "prod", topology: Edit | None = None, settings: Edit | None = None
) -> list[tuple[str, str, tuple[str, ...]]]:
    """(rule, subject, services) of every finding when ``topology``/``settings`` change."""
    base = project.plan(stack)
    if topology:
        project.edit_topology(topology)
    if settings:
        project.edit_settings(stack, settings)
    return sorted((f.rule, f.subject, f.services) for f in review(base, project.plan(stack)))


def test_every_rule_has_a_severity_and_a_reason() -> None:
    assert all(isinstance(severity, Severity) and reason for severity, reason in RULES.values())


def test_a_new_topic_is_safe(project: Project) -> None:
    def add(t: dict[str, Any]) -> None:
        t["topics"]["audit.log"] = {"partitions": 3}
        t["services"]["guardian"]["produces"].append("audit.log")

    found = changed(project, topology=add)
    assert ("topic-added", "aura360.audit.log", ()) in found
    assert ("acl-added", "guardian WRITE TOPIC aura360.audit.log", ("guardian",)) in found
    assert all(RULES[rule][0] == Severity.SAFE for rule, _, _ in found)


def retire_guardian_responses(t: dict[str, Any]) -> None:
    del t["topics"]["guardian.responses"]
    t["services"]["guardian"]["produces"] = []
    t["services"]["api"]["consumes"] = []
    t["events"] = {k: v for k, v in t["events"].items() if v.get("topic") != "guardian.responses"}


def test_removing_a_topic_deployed_services_still_use_is_an_error(project: Project) -> None:
    found = changed(project, topology=retire_guardian_responses)
    assert ("topic-removed-in-use", "aura360.guardian.responses", ("api", "guardian")) in found


def test_a_service_removed_with_the_topic_it_used_is_still_named(project: Project) -> None:
    """In the base guardian consumes guardian.requests (api produces it): guardian's pods run
    until its Deployment goes, and may not have read the topic to its end."""

    def retire_guardian_with_its_topic(t: dict[str, Any]) -> None:
        retire_guardian_responses(t)
        del t["topics"]["guardian.requests"]
        del t["services"]["guardian"]
        t["services"]["api"]["produces"].remove("guardian.requests")
        t["events"] = {k: v for k, v in t["events"].items() if v.get("topic") != "guardian.requests"}

    base = project.plan("prod")
    project.edit_topology(retire_guardian_with_its_topic)
    project.edit_settings("prod", lambda s: s["kubernetes"]["deployments"].pop("guardian"))
    removed = {f.subject: f for f in review(base, project.plan("prod")) if f.rule.startswith("topic-removed")}
    requests, responses = removed["aura360.guardian.requests"], removed["aura360.guardian.responses"]
    assert (requests.rule, requests.services) == ("topic-removed-in-use", ("api", "guardian"))
    assert requests.detail == "removed from the topology; guardian removed in the same change"
    assert (responses.rule, responses.services) == ("topic-removed-in-use", ("api", "guardian"))


def test_a_topic_removed_with_every_service_that_used_it_is_still_in_use(project: Project) -> None:
    def retire_vectordb(t: dict[str, Any]) -> None:
        del t["topics"]["context.vectorized"]
        del t["services"]["context-vectorizer"]
        t["services"]["vectordb-ingest"]["consumes"] = ["vectordb.ingest"]
        t["events"].pop("context.vectorized")

    found = changed(project, topology=retire_vectordb)
    assert (
        "topic-removed-in-use",
        "aura360.context.vectorized",
        ("context-vectorizer", "vectordb-ingest"),
    ) in found


def test_an_env_var_added_or_removed_says_so(project: Project) -> None:
    def route_to_redis(s: dict[str, Any]) -> None:
        s["messaging"].update(
            routing={"user.mood.created": "both"}, redis={"url": "redis://redis.internal:6379/0"}
        )

    project.edit_topology(lambda t: t["events"]["user.mood.created"].update(channel="aura360:user"))
    without = project.plan("prod")
    project.edit_settings("prod", route_to_redis)
    with_redis = project.plan("prod")

    def redis_url(base: Plan, head: Plan) -> list[str]:
        return [f.detail for f in review(base, head) if f.subject == "api REDIS_URL"]

    assert redis_url(without, with_redis) == ["added: redis://redis.internal:6379/0"]
    assert redis_url(with_redis, without) == ["removed (was redis://redis.internal:6379/0)"]


def test_removing_a_topic_nobody_uses_any_more_warns_of_its_data(project: Project) -> None:
    project.edit_topology(lambda t: t["topics"].update({"old.stuff": {"partitions": 1}}))
    found = changed(project, topology=lambda t: t["topics"].pop("old.stuff"))
    assert found == [("topic-removed", "aura360.old.stuff", ())]


def test_more_partitions_on_a_keyed_topic_names_its_consumers(project: Project) -> None:
    found = changed(project, "dev", topology=lambda t: t["topics"]["user.events"].update(partitions=12))
    assert found == [("partitions-increased-keyed", "aura360.user.events", ("context-aggregator",))]


def test_more_partitions_on_an_unkeyed_topic_are_safe(project: Project) -> None:
    project.edit_topology(lambda t: t["topics"]["vectordb.ingest"].pop("key"))
    found = changed(project, "dev", topology=lambda t: t["topics"]["vectordb.ingest"].update(partitions=6))
    assert found == [("partitions-increased", "aura360.vectordb.ingest", ())]


def test_fewer_partitions_is_an_error(project: Project) -> None:
    found = changed(project, "dev", topology=lambda t: t["topics"]["user.events"].update(partitions=2))
    assert found == [("partitions-decreased", "aura360.user.events", ("api", "context-aggregator"))]


def test_shorter_retention_warns_and_longer_is_safe(project: Project) -> None:
    shorter = changed(project, topology=lambda t: t["topics"]["user.events"].update(retention="1d"))
    assert shorter == [("retention-shortened", "aura360.user.events", ("api", "context-aggregator"))]
    longer = changed(project, topology=lambda t: t["topics"]["user.events"].update(retention="30d"))
    assert longer == [("retention-lengthened", "aura360.user.events", ())]


def test_a_cleanup_policy_change_warns(project: Project) -> None:
    found = changed(project, topology=lambda t: t["topics"]["guardian.responses"].update(cleanup="compact"))
    assert ("cleanup-changed", "aura360.guardian.responses", ("api", "guardian")) in found


def test_min_isr_and_replication_changes(project: Project, repo_dir: Path) -> None:
    found = changed(project, settings=lambda s: s["topics"]["defaults"].update(min_insync_replicas=3))
    assert {rule for rule, _, _ in found} == {"min-isr-changed"}
    base = project.plan("prod")
    topic = base.topics[0]
    impossible = topic.model_copy(update={"config": {**topic.config, "min.insync.replicas": "4"}})
    head = base.model_copy(update={"topics": [impossible, *base.topics[1:]]})
    assert [f.rule for f in review(base, head)] == ["min-isr-above-replication"]
    # An existing cluster takes any replication (Confluent fixes it at 3).
    project.write("Pulumi.staging.yaml", existing_cluster_stack_file())
    replicated = changed(project, "staging", settings=lambda s: s["topics"]["defaults"].update(replication=4))
    assert ("replication-changed", "aura360.user.events", ("api", "context-aggregator")) in replicated


def test_a_threshold_change_is_reported_per_service_and_an_opt_out_warns(project: Project) -> None:
    def retune(t: dict[str, Any]) -> None:
        t["services"]["api"]["monitoring"] = {"lag": {"messages": 5000}, "for": "10m"}
        t["services"]["guardian"]["monitoring"] = {"enabled": False}

    found = changed(project, topology=retune)
    assert ("alert-threshold-changed", "aura360.guardian.responses", ("api",)) in found
    assert ("alert-removed", "aura360.guardian.requests", ("guardian",)) in found
    details = {f.detail for f in review(project.plan("dev"), project.plan("dev"))}
    assert details == set(), "no change, no finding"


def test_renamed_groups_and_transactional_prefixes_warn_the_service(project: Project) -> None:
    def rename(t: dict[str, Any]) -> None:
        t["services"]["guardian"]["consumer_group"] = "guardian-v2"
        t["services"]["context-aggregator"]["transactional_id_prefix"] = "aggregator-"

    found = changed(project, topology=rename)
    assert ("group-renamed", "guardian", ("guardian",)) in found
    assert ("transactional-prefix-renamed", "context-aggregator", ("context-aggregator",)) in found
    assert ("acl-removed", "guardian READ GROUP aura360.guardian", ("guardian",)) in found


def test_a_backend_flip_warns_and_other_env_changes_are_safe(project: Project) -> None:
    def flip(s: dict[str, Any]) -> None:
        s["messaging"].update(backend="celery", celery_broker={"url": "redis://redis.internal:6379/1"})

    found = changed(project, settings=flip)
    rules = {(rule, subject.split()[1]) for rule, subject, _ in found}
    assert rules == {("backend-changed", "MESSAGING_BACKEND"), ("env-changed", "CELERY_BROKER_URL")}


def test_a_service_backend_switch_names_exactly_the_services_that_switch(project: Project) -> None:
    broker = {"url": "redis://redis.internal:6379/1"}

    def guardian_falls_back(s: dict[str, Any]) -> None:
        s["messaging"].update(celery_broker=broker, services={"guardian": {"backend": "celery"}})

    def switched(found: list[tuple[str, str, tuple[str, ...]]]) -> list[tuple[str, tuple[str, ...]]]:
        return [(subject, services) for rule, subject, services in found if rule == "backend-changed"]

    assert switched(changed(project, settings=guardian_falls_back)) == [
        ("guardian MESSAGING_BACKEND", ("guardian",))
    ]

    # The stack's dual write turns on; api keeps its own setting: every other service is named.
    def dual_write_but_api(s: dict[str, Any]) -> None:
        s["messaging"].update(dual_write=True)
        s["messaging"]["services"]["api"] = {"dual_write": False}

    assert switched(changed(project, settings=dual_write_but_api)) == [
        (f"{service} MESSAGING_DUAL_WRITE", (service,))
        for service in ("context-aggregator", "context-vectorizer", "guardian", "vectordb-ingest")
    ]


def test_services_added_and_removed_create_and_revoke_credentials(project: Project) -> None:
    def swap(t: dict[str, Any]) -> None:
        t["services"]["auditor"] = {"consumes": ["user.events"]}
        del t["services"]["vectordb-ingest"]

    found = changed(project, topology=swap)
    assert ("principal-added", "aura360.prod.auditor", ("auditor",)) in found
    assert ("principal-removed", "aura360.prod.vectordb-ingest", ("vectordb-ingest",)) in found


def test_a_rotation_is_one_finding_not_every_principal_replaced(project: Project, repo_dir: Path) -> None:
    project.write("Pulumi.staging.yaml", existing_cluster_stack_file())

    def rotate(s: dict[str, Any]) -> None:
        s["credentials"] = {"rotation": {"generation": 2, "overlap": "12h"}}

    base = project.plan("staging")
    found = changed(project, "staging", settings=rotate)
    assert found == [("credentials-rotated", "generation 1 -> 2", tuple(s.name for s in base.services))]
    [finding] = review(base, project.plan("staging"))
    assert finding.detail == "old ones valid for 12h more"

    # A rename in the same change is still a principal removed and added.
    found = changed(
        project,
        "staging",
        topology=lambda t: t["services"].update(auditor=t["services"].pop("vectordb-ingest")),
        settings=lambda s: s["credentials"]["rotation"].update(generation=3),
    )
    assert ("principal-added", "aura360.staging.auditor-g3", ("auditor",)) in found
    assert ("principal-removed", "aura360.staging.vectordb-ingest-g2", ("vectordb-ingest",)) in found


def test_a_new_stack_is_all_new(project: Project) -> None:
    plan = project.plan("prod")
    assert {f.rule for f in review(None, plan)} == {"topic-added"}


# --- through git and the CLI --------------------------------------------------------------


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def repository(project: Project) -> Project:
    git(project.root, "init", "-q")
    git(project.root, "add", "-A")
    git(project.root, "-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "base")
    return project


def diff(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra", "--project-dir", str(root), "diff", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_default_topology_against_its_previous_commit(repository: Project) -> None:
    """A realistic pull request: more partitions for the busiest keyed topic in dev, a new
    consumer of it, and guardian's group renamed."""

    def change(t: dict[str, Any]) -> None:
        t["topics"]["user.events"]["partitions"] = 12
        t["services"]["auditor"] = {"consumes": ["user.events"]}
        t["services"]["guardian"]["consumer_group"] = "guardian-v2"

    repository.edit_topology(change)
    git(repository.root, "-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qam", "change")
    result = diff(repository.root, "--base", "HEAD~1", "--format", "json")
    assert result.returncode == 4, result.stderr
    report = json.loads(result.stdout)
    assert report["severity"] == "warning" and report["problems"] == []
    by_stack = {(f["stack"], f["rule"], f["subject"]) for f in report["findings"]}
    assert ("dev", "partitions-increased-keyed", "aura360.user.events") in by_stack
    assert ("prod", "partitions-increased-keyed", "aura360.user.events") not in by_stack  # prod overrides it
    assert ("prod", "principal-added", "aura360.prod.auditor") in by_stack
    assert ("local", "group-renamed", "guardian") in by_stack
    keyed = next(f for f in report["findings"] if f["rule"] == "partitions-increased-keyed")
    assert keyed["services"] == ["auditor", "context-aggregator"]

    markdown = diff(repository.root, "--base", "HEAD~1", "--stack", "dev")
    assert markdown.returncode == 4
    assert markdown.stdout.startswith("### Change review against `HEAD~1`: ⚠️ warning")
    assert (
        "| ⚠️ | dev | partitions-increased-keyed | `aura360.user.events` | 6 -> 12, key user_id |"
        in markdown.stdout
    )


def test_no_change_is_exit_0_and_a_refused_change_is_exit_5(repository: Project) -> None:
    assert diff(repository.root, "--base", "HEAD").returncode == 0
    repository.edit_topology(retire_guardian_responses)
    result = diff(repository.root, "--base", "HEAD", "--stack", "prod")
    assert result.returncode == 5
    assert "| ⛔ | prod | topic-removed-in-use | `aura360.guardian.responses` |" in result.stdout


def test_bad_input_exits_2(repository: Project) -> None:
    result = diff(repository.root, "--base", "no-such-ref")
    assert (result.returncode, result.stderr.strip()) == (
        2,
        "diff: --base no-such-ref: not a commit in this repository",
    )
    repository.edit_topology(lambda t: t["topics"]["user.events"].update(partitions=0))
    broken = diff(repository.root, "--base", "HEAD", "--stack", "dev", "--format", "json")
    assert broken.returncode == 2
    assert any('topics."user.events".partitions' in p for p in json.loads(broken.stdout)["problems"])


def test_a_topology_problem_is_reported_once_not_once_per_stack(repository: Project) -> None:
    repository.edit_topology(lambda t: t["topics"]["user.events"].update(partitions=0))
    repository.edit_settings("prod", lambda s: s["messaging"].update(bakend="celery"))
    result = diff(repository.root, "--base", "HEAD", "--format", "json")
    assert result.returncode == 2
    assert json.loads(result.stdout)["problems"] == [
        'topology.yaml: topics."user.events".partitions: must be >= 1 (got 0)',
        "prod: Pulumi.prod.yaml: settings.messaging.bakend: unknown key (did you mean 'backend'?); "
        "allowed keys: backend, celery_broker, dual_write, redis, routing, services",
    ]


def test_a_base_whose_topology_does_not_resolve_is_said_once(repository: Project) -> None:
    text = (repository.root / "topology.yaml").read_text()
    repository.edit_topology(lambda t: t["topics"]["user.events"].update(partitions=0))
    git(repository.root, "-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qam", "broken")
    repository.write("topology.yaml", text)
    result = diff(repository.root, "--base", "HEAD", "--format", "json")
    assert json.loads(result.stdout)["problems"] == [
        'the base HEAD does not resolve (HEAD:topology.yaml: topics."user.events".partitions: must be '
        ">= 1 (got 0)); not reviewed"
    ]


def test_plans_are_compared_not_files(repository: Project) -> None:
    """Reordering and reformatting the topology changes no plan: nothing to review."""
    repository.edit_topology(lambda t: t.update(topics=dict(reversed(list(t["topics"].items())))))
    assert diff(repository.root, "--base", "HEAD").returncode == 0


def test_the_docs_show_exactly_the_severity_table(repo_dir: Path) -> None:
    readme = (repo_dir / "docs" / "change-review.md").read_text()
    rows = {
        line.split("|")[1].strip().strip("`"): (line.split("|")[2].strip(), line.split("|")[3].strip())
        for line in readme.splitlines()
        if line.startswith("| `") and line.split("|")[2].strip() in {"safe", "warning", "error"}
    }
    assert rows == {rule: (severity.name.lower(), why) for rule, (severity, why) in RULES.items()}
