"""Adoption with the real engine: a cluster that already holds the plan's topics and ACLs is
taken over by `pulumi up` with the `adopt` list `python -m infra import --stack` writes.

A topic that differs from the plan is not touched until the `adopt` list names it; then the
`up` takes everything over (nothing is created twice, no "already exists" failure), sets the
topic changed by hand back to the plan, and once the `adopt` list is removed the stack has
nothing to do.
"""

from __future__ import annotations

import pytest
from pulumi import automation as auto

from infra.live.kafka_broker import Broker
from infra.plan.resolve import load_plan
from tests.broker_setup import deploy_plan, set_topic_config
from tests.e2e.broker_state import assert_broker_holds, topic_configs
from tests.e2e.engine import PARALLEL, EngineProject, existing_cluster_settings, state_resources
from tests.eventually import eventually

STACK = "e2e"


def test_an_existing_estate_is_adopted_not_recreated(engine_project: EngineProject, broker: Broker) -> None:
    project = engine_project
    project.edit_topology(lambda topology: topology.update(domain="adopted"))
    settings = existing_cluster_settings(broker)
    stack = project.stack(STACK, settings)  # the stack file, with the admin password as a secret
    plan = load_plan(project.root, STACK)

    # Someone made all of it before this stack existed, and changed one topic since.
    deploy_plan(broker, plan)
    events = "adopted.user.events"
    set_topic_config(broker, events, "retention.ms", "3600000")

    adopt = project.import_adopt_list(STACK)
    assert sorted(adopt["topics"]) == sorted(topic.name for topic in plan.topics)
    assert sorted(adopt["acls"]) == sorted(acl.adoption_id for acl in plan.acls)

    # Without the list, the topic changed by hand is refused, and left as it is.
    with pytest.raises(auto.CommandError, match=rf"topic {events} already exists on the cluster and differs"):
        stack.up(parallel=PARALLEL)
    assert topic_configs(broker, plan)[events]["retention.ms"] == "3600000"

    project.write_settings(STACK, {**settings, "adopt": adopt})
    stack.up(parallel=PARALLEL)
    grouped = [r for r in state_resources(stack) if r["type"].startswith("pulumi-python:dynamic/")]
    assert sorted(
        name for r in grouped if r["type"].endswith(":Topics") for name in r["outputs"]["topics"]
    ) == sorted(topic.name for topic in plan.topics)
    planned_retention = plan.topic("user.events").config["retention.ms"]
    eventually(
        lambda: topic_configs(broker, plan)[events]["retention.ms"],
        lambda retention: retention == planned_retention,
        what=f"{events} retention set back",
    )
    assert_broker_holds(broker, plan)

    # The adopt list has done its job: without it there is nothing to do.
    project.write_settings(STACK, settings)
    stack.preview(expect_no_changes=True)
    stack.destroy(parallel=PARALLEL)
