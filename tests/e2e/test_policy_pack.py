"""The CrossGuard pack in `policy/` enforced by the real engine (`--policy-pack policy`)."""

from __future__ import annotations

import pytest
from pulumi import automation as auto

from infra.live.kafka_broker import Broker
from tests.e2e.broker_state import snapshot
from tests.e2e.engine import PARALLEL, EngineProject, existing_cluster_settings
from tests.project_files import REPO

POLICY_PACK = str(REPO / "policy")


def test_a_violating_stack_is_refused_and_nothing_is_created(
    engine_project: EngineProject, broker: Broker
) -> None:
    """A prod-* stack with unprotected single-replica topics breaks two mandatory policies."""
    project = engine_project
    project.edit_topology(lambda topology: topology.update(domain="violating"))
    stack = project.stack("prod-e2e", existing_cluster_settings(broker))
    before = snapshot(broker)

    # A preview judges every resource before any exists: every violation, nothing created.
    with pytest.raises(auto.CommandError) as refused:
        stack.preview(policy_packs=[POLICY_PACK], parallel=PARALLEL)
    text = str(refused.value)
    # Judged per topic inside each family's resource, and named in the message.
    for topic in ("context.aggregated", "user.events", "vectordb.ingest"):
        family = topic.split(".")[0]
        durability = (
            f"[mandatory]  prod-topic-durability  (pulumi-python:dynamic/kafka:Topics: topics-{family})\n"
            "          Production topics: replication >= 3, min.insync.replicas >= 2.\n"
            f"          topic violating.{topic}: production topics need replication >= 3 (has 1)"
        )
        assert durability in text
        protection = "[mandatory]  protected-stays-protected  (pulumi-python:dynamic/kafka:Topics: topics-"
        assert f"{protection}{family})" in text
    assert (
        "[mandatory]  protected-stays-protected  (pulumi-python:dynamic/kafka:ServiceAccess: access-api)"
        in text
    )

    # An update without its preview (`up --skip-preview`, and the Automation API's `up`) judges
    # each resource as it goes: the first topic stops it, after earlier resources (providers,
    # passwords) were created, though nothing on the broker. Hence CI previews with the pack.
    with pytest.raises(auto.CommandError) as stopped:
        stack.up(policy_packs=[POLICY_PACK], parallel=PARALLEL)
    assert "[mandatory]  " in str(stopped.value)
    assert "(pulumi-python:dynamic/kafka:Topics: topics-" in str(stopped.value)
    assert snapshot(broker) == before


def test_a_compliant_stack_previews_and_deploys_under_the_pack(
    engine_project: EngineProject, broker: Broker
) -> None:
    """Also the first preview of a fresh stack, whose SCRAM passwords do not exist yet."""
    project = engine_project
    project.edit_topology(lambda topology: topology.update(domain="compliant"))
    stack = project.stack("e2e", existing_cluster_settings(broker))
    preview = stack.preview(policy_packs=[POLICY_PACK])
    assert {str(kind) for kind in preview.change_summary} == {"create"}
    assert "can't run policy" not in preview.stdout, "every field of these resources is known in preview"
    stack.up(policy_packs=[POLICY_PACK], parallel=PARALLEL)
    assert "compliant.user.events" in snapshot(broker).topics
    stack.destroy(parallel=PARALLEL)
