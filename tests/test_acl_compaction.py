"""Prefixed-ACL compaction keeps exactly the declared grants, and the benchmark topology is valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.generate import write_project
from infra.acl_compaction import compact_acls, topics_granted
from infra.plan import Plan, load_plan


def assert_same_topic_grants(plan: Plan) -> None:
    compacted = compact_acls(plan)
    for principal in plan.principals:
        for operation in ("READ", "WRITE", "DESCRIBE"):
            literal = topics_granted(list(plan.acls), plan, principal.name, operation)
            assert topics_granted(compacted, plan, principal.name, operation) == literal
    non_topic = [a for a in plan.acls if a.resource_type != "TOPIC"]
    assert [a for a in compacted if a.resource_type != "TOPIC"] == non_topic


def test_compaction_of_the_default_topology_grants_nothing_more(repo_dir: Path) -> None:
    plan = load_plan(repo_dir, "prod")
    assert_same_topic_grants(plan)


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    return load_plan(write_project(tmp_path_factory.mktemp("bench"), topics=200, services=20), "prod")


def test_benchmark_topology_resolves(large: Plan) -> None:
    assert len(large.topics) == 200
    assert len(large.services) == 20


def test_compaction_folds_whole_areas_into_prefixes(large: Plan) -> None:
    compacted = compact_acls(large)
    assert len(compacted) < len(large.acls) / 4
    prefixed = [a for a in compacted if a.pattern_type == "PREFIXED"]
    assert prefixed and all(a.resource_name.endswith(".") for a in prefixed)
    assert_same_topic_grants(large)
