"""A stack deployed by the last release that kept one Pulumi resource per topic, ACL and SCRAM
user moves to grouped topics and service access in place, on the real broker: the program refuses
to run on the old state, `kafka-platform migrate-state` forgets the per-object resources, and the
next `up` takes the live objects over. The same topics (by topic id), ACLs, users and passwords."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import TopicCollection
from pulumi import automation as auto

from infra.live.kafka_broker import Broker
from infra.plan.resolve import load_plan
from tests.e2e.broker_state import assert_broker_holds, snapshot
from tests.e2e.engine import (
    PARALLEL,
    EngineProject,
    deploy_with_release,
    existing_cluster_settings,
    state_resources,
)
from tests.e2e.test_life_cycle import changes, passwords
from tests.integration.access_checks import can_authenticate

STACK = "e2e"
# The last commit whose program kept one resource per topic, ACL and SCRAM user.
PER_OBJECT_RELEASE = "aa4b576"
PER_OBJECT_TYPES = {
    "kafka:index/topic:Topic",
    "kafka:index/acl:Acl",
    "kafka:index/userScramCredential:UserScramCredential",
}


def topic_ids(broker: Broker, names: list[str]) -> dict[str, str]:
    admin = broker.admin()  # kept until every future has its result
    described = admin.describe_topics(TopicCollection(names), request_timeout=30)
    return {name: str(future.result().topic_id) for name, future in described.items()}


def test_a_per_object_stack_is_migrated_in_place(
    engine_project: EngineProject, broker: Broker, tmp_path: Path
) -> None:
    project = engine_project
    project.edit_topology(lambda topology: topology.update(domain="migrated"))
    settings = existing_cluster_settings(broker)
    stack = project.stack(STACK, settings)
    deploy_with_release(project, STACK, PER_OBJECT_RELEASE, tmp_path)
    plan = load_plan(project.root, STACK)
    old_types = {r["type"] for r in state_resources(stack)}
    assert old_types >= PER_OBJECT_TYPES, "the release under test kept one resource per object"
    deployed = snapshot(broker)
    ids = topic_ids(broker, [topic.name for topic in plan.topics])
    credentials = passwords(stack)

    # Without the migration the grouped program refuses before it changes anything.
    with pytest.raises(auto.CommandError, match=r"first run `kafka-platform migrate-state --stack e2e`"):
        stack.up(parallel=PARALLEL)
    assert snapshot(broker) == deployed

    dry = project.kafka_platform("migrate-state", "--stack", STACK, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"{len(plan.acls)} ACLs" in dry.stdout and f"{len(plan.topics)} topics" in dry.stdout
    assert {r["type"] for r in state_resources(stack)} >= PER_OBJECT_TYPES, "a dry run changes nothing"
    said = project.migrate_state(STACK)
    assert f"{len(plan.services)} SCRAM users" in said
    assert not PER_OBJECT_TYPES & {r["type"] for r in state_resources(stack)}
    assert snapshot(broker) == deployed, "the migration touches only the state"

    up = stack.up(parallel=PARALLEL)
    families = {topic.key.split(".")[0] for topic in plan.topics}
    assert changes(up) == {"create": len(families) + len(plan.services)}, "nothing deleted or replaced"
    assert topic_ids(broker, [topic.name for topic in plan.topics]) == ids
    assert snapshot(broker) == deployed
    assert_broker_holds(broker, plan)
    assert passwords(stack) == credentials
    for service in plan.services:
        assert can_authenticate(broker, service.principal, credentials[service.name]), service.name
    assert stack.outputs()["kafka_state_layout"].value == "grouped-v1"
    stack.preview(expect_no_changes=True)
    stack.preview(expect_no_changes=True, refresh=True)
    again = project.kafka_platform("migrate-state", "--stack", STACK)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    stack.destroy(parallel=PARALLEL)
    assert not snapshot(broker).topics_under("migrated.")
