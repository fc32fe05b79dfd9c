"""Credential rotation on the real broker, with the real engine: a generation bump creates a
second SCRAM user beside the first, both log in and produce during the overlap, and the first
`pulumi up` after the overlap revokes the old one and its ACLs without touching anything else.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from datetime import UTC, datetime, timedelta

import pytest
from pulumi import automation as auto

from infra.live.kafka_broker import Broker
from infra.plan.resolve import load_plan
from tests.e2e.broker_state import snapshot
from tests.e2e.engine import PARALLEL, EngineProject, existing_cluster_settings, state_resources
from tests.e2e.test_life_cycle import changes
from tests.integration.access_checks import can_authenticate, can_produce

STACK = "rotation"
OVERLAP_S = 20


def credentials(outputs: MutableMapping[str, auto.OutputValue]) -> dict[str, tuple[str, str]]:
    """service -> (username, password), from the stack's secret output only."""
    value = outputs["service_credentials"]
    assert value.secret
    return {name: (c["username"], c["password"]) for name, c in value.value.items()}


def test_a_rotation_overlaps_then_revokes_the_old_credential(
    engine_project: EngineProject, broker: Broker
) -> None:
    if not broker.security_protocol.startswith("SASL"):
        pytest.skip("rotation needs SCRAM users; this broker has no SASL listener")
    project = engine_project
    project.edit_topology(lambda topology: topology.update(domain="rotation"))
    # Protected, like prod: the old generation must still be revocable.
    settings = existing_cluster_settings(broker, protection={"protect": True})
    stack = project.stack(STACK, settings)
    stack.up(parallel=PARALLEL)
    old = credentials(stack.outputs())
    plan = load_plan(project.root, STACK)
    producer = next(service for service in plan.services if service.produces)
    topic = producer.produces[0]
    user, password = old[producer.name]
    assert user == f"rotation.{STACK}.{producer.name}"
    assert can_produce(broker, user, password, topic)

    # 1. The bump: every service gets a `-g2` user with a new password and the same grants; the
    #    old users keep working, so pods still on the old Secret are not cut off.
    rotated = {**settings, "credentials": {"rotation": {"generation": 2, "overlap": f"{OVERLAP_S}s"}}}
    project.write_settings(STACK, rotated)
    started = datetime.now(UTC)
    up = stack.up(parallel=PARALLEL)
    finished = datetime.now(UTC)
    # A password per service; each service's access gains the new user and its grants again.
    assert changes(up) == {"create": len(plan.services), "update": len(plan.services)}
    outputs = stack.outputs()
    new = credentials(outputs)
    assert {name: cred[0] for name, cred in new.items()} == {name: f"{u}-g2" for name, (u, _) in old.items()}
    assert all(new[name][1] != old[name][1] for name in old)
    recorded = outputs["credential_generations"].value
    assert (recorded["current"], recorded["previous"]) == (2, 1)
    # The overlap runs from the bump's deployment, whenever in that `up` the program read the clock.
    until = datetime.fromisoformat(recorded["previous_until"])
    overlap = timedelta(seconds=OVERLAP_S)
    assert started + overlap <= until <= finished + overlap

    # 2. Within the overlap nothing changes (checked first, while there is time left: a preview
    #    that reads the clock after `until` would rightly plan the revocation).
    if until - datetime.now(UTC) > timedelta(seconds=8):
        stack.preview(expect_no_changes=True)
    assert {u for u, _ in [*old.values(), *new.values()]} <= snapshot(broker).users
    users = {
        r["inputs"]["service"]: sorted(r["inputs"]["users"])
        for r in state_resources(stack)
        if r["type"] == "pulumi-python:dynamic/kafka:ServiceAccess"
    }
    assert users == {name: sorted([old[name][0], new[name][0]]) for name in old}
    for name in old:
        assert can_authenticate(broker, *old[name]) and can_authenticate(broker, *new[name]), name
    assert can_produce(broker, *old[producer.name], topic)
    assert can_produce(broker, *new[producer.name], topic)

    # 3. The first deployment after the overlap deletes exactly the old users and their ACLs.
    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 1)
    topics_before = snapshot(broker).topics_under("rotation.")
    up = stack.up(parallel=PARALLEL)
    assert changes(up) == {"delete": len(plan.services), "update": len(plan.services)}
    for name in old:
        assert not can_authenticate(broker, *old[name]), f"{name}'s old credential still logs in"
        assert can_authenticate(broker, *new[name]), name
    assert can_produce(broker, *new[producer.name], topic)
    after = snapshot(broker)
    assert not {u for u, _ in old.values()} & after.users
    assert after.topics_under("rotation.") == topics_before
    old_principals = {f"User:{username}" for username, _ in old.values()}
    assert not [acl for acl in after.acls if acl[3] in old_principals]
    assert stack.outputs()["credential_generations"].value == {
        "current": 2,
        "previous": None,
        "previous_until": None,
    }
    stack.preview(expect_no_changes=True)
    project.write_settings(STACK, {**rotated, "protection": {"protect": False}})
    stack.up(parallel=PARALLEL)
    stack.destroy(parallel=PARALLEL)
