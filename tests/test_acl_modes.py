"""`acls.mode` and the ACL budget: what each mode grants, and when validate refuses a stack.

Compaction and role bindings are checked against the literal grants they stand for: a mode may
change how access is written down, never what a service can reach.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.generate import write_project
from infra.model.errors import ConfigError
from infra.plan.acl_compaction import topics_granted
from infra.plan.model import Plan
from infra.plan.resolve import load_plan
from infra.plan.role_bindings import ROLE_OPERATIONS
from infra.plan.service_access import MSK_ADMIN_ACLS
from tests.project_files import Project, add_streams_and_connect

RUNTIME_TOPIC_SUFFIXES = ("KSTREAM-AGGREGATE-0000000003-repartition", "counts-changelog")


def set_acls(**acls: Any) -> Any:
    def edit(settings: dict[str, Any]) -> None:
        settings["acls"] = acls

    return edit


def all_names(plan: Plan) -> list[str]:
    """Every planned topic, and topics Streams apps would create at run time."""
    names = [topic.name for topic in plan.topics]
    for service in plan.services:
        if app_id := service.env.get("KAFKA_STREAMS_APPLICATION_ID"):
            names += [f"{app_id}-{suffix}" for suffix in RUNTIME_TOPIC_SUFFIXES]
    return names


def assert_same_reach(literal: Plan, other: Plan) -> None:
    names = all_names(literal)
    for principal in literal.principals:
        for operation in ("READ", "WRITE", "CREATE", "DELETE"):
            expected = topics_granted(literal.acls, names, principal.name, operation)
            assert topics_granted(other.acls, names, principal.name, operation) == expected, (
                principal.service,
                operation,
            )
    assert [a for a in other.acls if a.resource_type != "TOPIC"] == [
        a for a in literal.acls if a.resource_type != "TOPIC"
    ]


# --- prefixed ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def large_prefixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Plan, Plan]:
    directory = tmp_path_factory.mktemp("bench")
    literal = load_plan(write_project(directory / "literal", topics=200, services=20), "prod")
    prefixed = load_plan(write_project(directory / "prefixed", 200, 20, {"mode": "prefixed"}), "prod")
    return literal, prefixed


def test_prefixed_mode_folds_whole_areas_and_grants_nothing_more(large_prefixed: tuple[Plan, Plan]) -> None:
    literal, prefixed = large_prefixed
    assert (len(literal.topics), len(literal.services)) == (200, 20)
    assert len(prefixed.acls) < len(literal.acls) / 4
    folded = [a for a in prefixed.acls if a.pattern_type == "PREFIXED"]
    assert folded and all(a.resource_name.endswith(".") for a in folded)
    assert_same_reach(literal, prefixed)


def test_prefixed_mode_warns_per_service_about_topics_created_under_its_prefixes(
    large_prefixed: tuple[Plan, Plan],
) -> None:
    literal, prefixed = large_prefixed
    assert literal.warnings == []
    assert len(prefixed.warnings) == len(prefixed.services)
    first = prefixed.warnings[0]
    assert first.startswith("Pulumi.prod.yaml: settings.acls.mode: service 'svc000' is granted ")
    assert "WRITE 'bench.area000.*'" in first and "READ 'bench.area001.*'" in first
    assert "outside topology.yaml" in first


def test_prefixed_mode_never_reaches_a_streams_apps_runtime_topics(project: Project) -> None:
    """A reader of every `aura360.` topic would fold to `aura360.*`, which also covers the
    Streams app's `aura360.counter-...` changelogs: it keeps literal grants instead."""

    def reader_of_everything(topology: dict[str, Any]) -> None:
        add_streams_and_connect(topology)
        topology["services"]["auditor"] = {"consumes": sorted(topology["topics"])}

    project.edit_topology(reader_of_everything)
    literal = project.plan("prod")
    prefixed = project.edit_settings("prod", set_acls(mode="prefixed")).plan("prod")
    auditor = [a for a in prefixed.acls if a.service == "auditor" and a.resource_type == "TOPIC"]
    assert not any(a.pattern_type == "PREFIXED" and a.resource_name == "aura360." for a in auditor)
    assert_same_reach(literal, prefixed)


def test_prefixed_mode_of_the_repository_topology_with_apps_grants_nothing_more(project: Project) -> None:
    project.edit_topology(add_streams_and_connect)
    literal = project.plan("prod")
    assert_same_reach(literal, project.edit_settings("prod", set_acls(mode="prefixed")).plan("prod"))


# --- rbac ----------------------------------------------------------------------------------


def bindings(plan: Plan, service: str) -> list[tuple[str, str]]:
    """(role, the CRN's last segment), sorted by resource then role."""
    found = [(b.role, b.crn_pattern.split("/")[-1]) for b in plan.role_bindings if b.service == service]
    return sorted(found, key=lambda binding: (binding[1], binding[0]))


def test_rbac_mode_binds_each_kind_to_exactly_its_roles(project: Project) -> None:
    project.edit_topology(add_streams_and_connect).edit_settings("prod", set_acls(mode="rbac"))
    plan = project.plan("prod")
    assert plan.acls == []
    assert bindings(plan, "api") == [
        ("DeveloperRead", "group=aura360.api"),
        ("DeveloperWrite", "topic=aura360.guardian.requests"),
        ("DeveloperRead", "topic=aura360.guardian.responses"),
        ("DeveloperWrite", "topic=aura360.user.events"),
        ("DeveloperWrite", "topic=aura360.vectordb.ingest"),
    ]
    assert bindings(plan, "counter") == [
        ("DeveloperRead", "group=aura360.counter"),
        ("DeveloperWrite", "topic=aura360.context.aggregated"),
        ("ResourceOwner", "topic=aura360.counter-*"),
        ("DeveloperRead", "topic=aura360.user.events"),
        ("DeveloperWrite", "transactional-id=aura360.counter-*"),
    ]
    assert bindings(plan, "sink") == [
        ("DeveloperRead", "group=aura360.sink"),
        ("DeveloperRead", "group=connect-aura360.sink.*"),
        ("DeveloperRead", "topic=aura360.guardian.requests"),
        ("DeveloperRead", "topic=aura360.sink.connect-configs"),
        ("DeveloperWrite", "topic=aura360.sink.connect-configs"),
        ("DeveloperRead", "topic=aura360.sink.connect-offsets"),
        ("DeveloperWrite", "topic=aura360.sink.connect-offsets"),
        ("DeveloperRead", "topic=aura360.sink.connect-status"),
        ("DeveloperWrite", "topic=aura360.sink.connect-status"),
        ("DeveloperWrite", "topic=aura360.vectordb.ingest"),
    ]
    assert all(
        b.crn_pattern.startswith("${cluster.rbac_crn}/kafka=${cluster.id}/") for b in plan.role_bindings
    )


def test_rbac_roles_cover_every_literal_grant_and_no_other_resource(project: Project) -> None:
    project.edit_topology(add_streams_and_connect)
    literal = project.plan("prod")
    rbac = project.edit_settings("prod", set_acls(mode="rbac")).plan("prod")
    for acl in literal.acls:
        wildcard = "*" if acl.pattern_type == "PREFIXED" else ""
        covering = [
            b
            for b in rbac.role_bindings
            if b.principal == acl.principal
            and b.crn_pattern.endswith(f"={acl.resource_name}{wildcard}")
            and acl.operation in ROLE_OPERATIONS[b.role]
        ]
        assert covering, acl
    literal_resources = {(a.principal, a.resource_name, a.pattern_type) for a in literal.acls}
    assert {(b.principal, b.resource_name, b.pattern_type) for b in rbac.role_bindings} == literal_resources


def test_rbac_bindings_are_in_the_plan_json(project: Project) -> None:
    project.edit_settings("prod", set_acls(mode="rbac"))
    plan_json = project.plan("prod").to_json()
    assert '"access_mode": "rbac"' in plan_json
    assert '"crn_pattern": "${cluster.rbac_crn}/kafka=${cluster.id}/topic=aura360.user.events"' in plan_json


@pytest.mark.parametrize(
    ("kafka_edit", "message"),
    [
        (
            {"confluent": {"tier": "basic"}},
            "Confluent offers the Kafka resource roles (DeveloperRead, DeveloperWrite, ResourceOwner) "
            "on standard, enterprise and dedicated clusters, not basic",
        ),
        (None, "role bindings are Confluent Cloud's; provider is 'msk'"),
    ],
)
def test_rbac_mode_is_refused_where_confluent_does_not_offer_it(
    project: Project, kafka_edit: dict[str, Any] | None, message: str
) -> None:
    stack = "prod" if kafka_edit else "prod-msk"
    if kafka_edit is None:
        project.write(
            "Pulumi.prod-msk.yaml",
            (Path(__file__).parent.parent / "examples/Pulumi.prod-msk.yaml").read_text(),
        )

    def edit(settings: dict[str, Any]) -> None:
        settings["acls"] = {"mode": "rbac"}
        if kafka_edit:
            settings["kafka"]["confluent"].update(kafka_edit["confluent"])
            settings["kafka"]["confluent"]["availability"] = "SINGLE_ZONE"

    with pytest.raises(ConfigError) as error:
        project.edit_settings(stack, edit).plan(stack)
    assert f"Pulumi.{stack}.yaml: settings.acls.mode: {message}" in str(error.value)


# --- the budget ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def thousand_topics(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,000 topics and 100 services on the repository's prod stack: a standard Confluent cluster."""
    return write_project(tmp_path_factory.mktemp("thousand"), acls={})


def validate(project: Path, stack: str = "prod") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra", "--project-dir", str(project), "validate", "--stack", stack],
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_thousand_topics_on_a_standard_cluster_fail_validate_in_literal_mode(thousand_topics: Path) -> None:
    result = validate(thousand_topics)
    assert result.returncode == 2, result.stdout
    assert result.stderr.splitlines() == [
        "Pulumi.prod.yaml: settings.acls.mode: the literal plan puts 2,100 ACLs on the cluster; a standard "
        "Confluent Cloud cluster (its default limit; acls.limit overrides it) takes 1,000: a deployment "
        "would fail part way. Ways out: `acls: {mode: prefixed}` (300 ACLs, fits); `acls: {mode: rbac}` "
        "(Confluent role bindings, which take no ACLs); `acls: {limit: <n>}` if your cluster's limit "
        "was raised"
    ]


@pytest.mark.parametrize("mode", ["prefixed", "rbac"])
def test_a_thousand_topics_on_a_standard_cluster_pass_in_prefixed_or_rbac_mode(
    thousand_topics: Path, tmp_path: Path, mode: str
) -> None:
    project = write_project(tmp_path, acls={"mode": mode})
    result = validate(project)
    assert result.returncode == 0, result.stderr
    plan = load_plan(project, "prod")
    if mode == "prefixed":
        assert len(plan.acls) == 300
    else:
        assert (len(plan.acls), len(plan.role_bindings)) == (0, 2100)


def test_an_msk_cluster_has_no_limit_unless_settings_set_one_and_counts_its_admin(tmp_path: Path) -> None:
    project = write_project(tmp_path, topics=1000, services=100, acls={})
    assert validate(project, "prod-msk").returncode == 0
    exact = len(load_plan(project, "prod-msk").acls) + MSK_ADMIN_ACLS

    write_project(tmp_path, topics=1000, services=100, acls={"limit": exact})
    assert validate(project, "prod-msk").returncode == 0
    write_project(tmp_path, topics=1000, services=100, acls={"limit": exact - 1})
    result = validate(project, "prod-msk")
    assert result.returncode == 2
    assert f"puts {exact:,} ACLs on the cluster; settings.acls.limit takes {exact - 1:,}" in result.stderr


def test_the_base_stack_of_previews_is_warned_when_one_preview_would_go_over(project: Project) -> None:
    project.edit_settings("dev", set_acls(limit=30))
    plan = project.plan("dev")
    assert 15 < len(plan.acls) <= 30
    assert plan.warnings == [
        f"Pulumi.dev.yaml: settings.acls.mode: {len(plan.acls)} ACLs fit the limit of 30 "
        f"(settings.acls.limit), but each pr-<n> preview adds its own {len(plan.acls)} on the same "
        "cluster: the first preview goes over it"
    ]
    result = subprocess.run(
        [sys.executable, "-m", "infra", "--project-dir", str(project.root), "validate", "--stack", "dev"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stderr == f"warning: {plan.warnings[0]}\n"
