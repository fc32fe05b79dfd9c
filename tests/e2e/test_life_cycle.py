"""The real engine deploys the project's own program on the real broker (`provider: kafka`).

Each step asserts on the broker itself, read with the AdminClient, not on what Pulumi reports.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pulumi import automation as auto

from infra.live.kafka_broker import Broker
from infra.model.stacks import ADMIN_PASSWORD_KEY
from infra.plan.model import Plan
from infra.plan.resolve import load_plan
from infra.program.kafka_admin import plan_acl_text
from tests.e2e.broker_state import assert_broker_holds, snapshot
from tests.e2e.engine import PARALLEL, EngineProject, existing_cluster_settings, state_resources
from tests.integration.access_matrix import run_matrix

STACK = "e2e"


def passwords(stack: auto.Stack) -> dict[str, str]:
    """Each service's SCRAM password, from the stack's secret output only."""
    outputs = stack.outputs()
    assert outputs["service_credentials"].secret
    return {name: cred["password"] for name, cred in outputs["service_credentials"].value.items()}


def changes(result: auto.UpResult | auto.PreviewResult) -> dict[str, int]:
    summary = (
        result.change_summary if isinstance(result, auto.PreviewResult) else result.summary.resource_changes
    )
    return {kind: count for kind, count in (summary or {}).items() if kind != "same"}


def test_life_cycle_from_empty_to_destroyed(engine_project: EngineProject, broker: Broker) -> None:
    project = engine_project
    project.edit_topology(lambda topology: topology.update(domain="lifecycle"))
    settings = existing_cluster_settings(broker)
    before = snapshot(broker)
    stack = project.stack(STACK, settings)

    # 1. Up from empty: the broker holds exactly the plan, and every path works with the
    #    credentials Pulumi generated (read back from the stack's secret output).
    up = stack.up(parallel=PARALLEL)
    plan = load_plan(project.root, STACK)
    assert set(changes(up)) == {"create"}
    assert_broker_holds(broker, plan)
    matrix = run_matrix(broker, plan, passwords(stack))
    assert not matrix.over_granted and not matrix.missing, matrix.report(plan)

    # 2. Nothing to do, also after reading the broker back.
    stack.preview(expect_no_changes=True)
    stack.preview(expect_no_changes=True, refresh=True)

    # 3. A topology change: a new topic guardian produces, and vectordb.ingest moves from api to
    #    context-vectorizer: a new family of topics, and the access of the three services changes
    #    (one topic and two ACLs created, one ACL deleted, nothing else). The preview names them.
    def change(topology: dict[str, Any]) -> None:
        topology["topics"]["audit.log"] = {"partitions": 2, "retention": "3d"}
        topology["services"]["guardian"]["produces"].append("audit.log")
        topology["services"]["api"]["produces"].remove("vectordb.ingest")
        topology["services"]["context-vectorizer"]["produces"].append("vectordb.ingest")

    project.edit_topology(change)
    preview = stack.preview(diff=True)
    assert changes(preview) == {"create": 1, "update": 3}
    shown = preview.stdout
    assert re.search(r"\+ pulumi-python:dynamic/kafka:Topics: \(create\)", shown)
    assert re.search(r"lifecycle\.audit\.log: \{\s+config\s+: \{\s+cleanup\.policy: \"delete\"", shown)
    for grant in (
        "- User:lifecycle.e2e.api WRITE TOPIC lifecycle.vectordb.ingest ",
        "+ User:lifecycle.e2e.context-vectorizer WRITE TOPIC lifecycle.vectordb.ingest ",
        "+ User:lifecycle.e2e.guardian WRITE TOPIC lifecycle.audit.log ",
    ):
        assert grant in shown, grant
    up = stack.up(parallel=PARALLEL)
    assert changes(up) == {"create": 1, "update": 3}
    changed = load_plan(project.root, STACK)
    assert_broker_holds(broker, changed)
    after = snapshot(broker)
    assert after.topics["lifecycle.audit.log"] == 2
    api = ("TOPIC", "lifecycle.vectordb.ingest", "LITERAL", "User:lifecycle.e2e.api", "*", "WRITE", "ALLOW")
    assert api not in after.acls

    # 4. A partition decrease is refused before anything changes, on the broker and in the state.
    project.edit_topology(lambda topology: topology["topics"]["audit.log"].update(partitions=1))
    with pytest.raises(auto.CommandError, match=r"lifecycle\.audit\.log would shrink from 2 to 1 partitions"):
        stack.up(parallel=PARALLEL)
    assert snapshot(broker) == after
    project.edit_topology(lambda topology: topology["topics"]["audit.log"].update(partitions=2))
    stack.preview(expect_no_changes=True)

    # 5. A flip to celery without a Celery broker is refused before anything changes; with one
    #    it touches no resource, only each service's env output.
    project.write_settings(STACK, {**settings, "messaging": {"backend": "celery"}})
    with pytest.raises(auto.CommandError, match=r"messaging\.celery_broker: required"):
        stack.up(parallel=PARALLEL)
    assert snapshot(broker) == after
    celery = {"backend": "celery", "celery_broker": {"url": "redis://celery-broker.internal:6379/1"}}
    project.write_settings(STACK, {**settings, "messaging": celery})
    up = stack.up(parallel=PARALLEL)
    assert changes(up) == {}
    env = stack.outputs()["service_env"].value
    assert {service: flags["MESSAGING_BACKEND"] for service, flags in env.items()} == dict.fromkeys(
        env, "celery"
    )
    assert {flags["CELERY_BROKER_URL"] for flags in env.values()} == {"redis://celery-broker.internal:6379/1"}
    assert snapshot(broker) == after

    # 6. Destroy of an unprotected stack leaves the broker as it was before step 1.
    stack.destroy(parallel=PARALLEL)
    assert snapshot(broker) == before


def _drop_guardian_responses(topology: dict[str, Any]) -> None:
    """Retire a topic: remove it and every use of it, and add another topic in the same change."""
    del topology["topics"]["guardian.responses"]
    topology["services"]["guardian"]["produces"] = ["audit.log"]
    topology["services"]["api"]["consumes"] = ["audit.log"]
    topology["events"] = {
        k: v for k, v in topology["events"].items() if v.get("topic") != "guardian.responses"
    }
    topology["topics"]["audit.log"] = {"partitions": 1}


def test_a_protected_stack_refuses_a_topic_removal_before_anything_changes(
    engine_project: EngineProject, broker: Broker
) -> None:
    project = engine_project
    project.edit_topology(lambda topology: topology.update(domain="protected"))
    settings = existing_cluster_settings(broker, protection={"protect": True})
    stack = project.stack(STACK, settings)
    stack.up(parallel=PARALLEL)
    deployed = snapshot(broker)
    resources = len(state_resources(stack))

    project.edit_topology(_drop_guardian_responses)
    with pytest.raises(auto.CommandError, match=r"would delete topics protected\.guardian\.responses"):
        stack.up(parallel=PARALLEL)
    # Nothing was applied: not the removal, and not the new topic or ACLs of the same change.
    assert snapshot(broker) == deployed
    assert "protected.audit.log" not in snapshot(broker).topics
    assert len(state_resources(stack)) == resources

    # Retiring it on purpose (docs/deploying.md): allowed in the settings, then applied. The topic
    # leaves the stack but stays on the broker with its data, as a protected topic always does.
    allowed = {"protect": True, "allow_deletes": {"topics": ["protected.guardian.responses"]}}
    project.write_settings(STACK, {**settings, "protection": allowed})
    stack.up(parallel=PARALLEL)
    assert "protected.audit.log" in snapshot(broker).topics
    assert "protected.guardian.responses" in snapshot(broker).topics
    managed = {
        name
        for r in state_resources(stack)
        if r["type"].endswith(":Topics")
        for name in r["outputs"]["topics"]
    }
    assert "protected.guardian.responses" not in managed and "protected.audit.log" in managed

    _tear_down_protected(project, stack, settings)


def _tear_down_protected(project: EngineProject, stack: auto.Stack, settings: dict[str, Any]) -> None:
    """Turn protection off (an `up` that unprotects everything), then destroy."""
    project.write_settings(STACK, {**settings, "protection": {"protect": False}})
    stack.up(parallel=PARALLEL)
    stack.destroy(parallel=PARALLEL)


def test_plan_matches_what_the_engine_registered(engine_project: EngineProject, broker: Broker) -> None:
    """Every planned topic is in its family's `Topics`, every planned ACL in its service's
    `ServiceAccess`, under stable names; and no secret is in the state in plain text."""
    project = engine_project
    project.edit_topology(lambda topology: topology.update(domain="names"))
    stack = project.stack(STACK, existing_cluster_settings(broker))
    stack.up(parallel=PARALLEL)
    plan: Plan = load_plan(project.root, STACK)
    # As the backend keeps it (the Automation API's export shows secrets).
    state = project.cli("stack", "export", "--stack", STACK)
    resources = {r["urn"].rsplit("::", 1)[-1]: r for r in json.loads(state)["deployment"]["resources"]}
    families = {topic.key.split(".")[0] for topic in plan.topics}
    for family in families:
        held = resources[f"topics-{family}"]["outputs"]["topics"]
        assert sorted(held) == sorted(t.name for t in plan.topics if t.key.split(".")[0] == family)
    for service in plan.services:
        access = resources[f"access-{service.name}"]["outputs"]
        planned = {plan_acl_text(acl, service.principal) for acl in plan.acls if acl.service == service.name}
        assert set(access["acls"]) == planned
        assert access["users"] == {service.principal: [broker.sasl_mechanism]}
        assert access["passwords"].get("ciphertext"), "passwords are encrypted in the state"
        # The providers read the admin password from the stack's config: not even encrypted here.
        assert "admin_password" not in access and access["admin_password_config"] == ADMIN_PASSWORD_KEY
    assert broker.admin_password not in state
    assert not [password for password in passwords(stack).values() if password in state]
    stack.destroy(parallel=PARALLEL)
