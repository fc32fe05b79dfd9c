"""Adoption with the real engine: a cluster that already holds the plan's topics and ACLs is
taken over by `pulumi up` with the `adopt` list `python -m infra import --stack` writes.

Pulumi imports them (nothing is created twice, no "already exists" failure), a topic changed by
hand is set back to the plan in the same update, and once the `adopt` list is removed the
stack has nothing to do.
"""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

from infra.apply_plan import apply_plan, set_topic_config
from infra.kafka_broker import Broker
from infra.plan import load_plan
from tests.e2e.broker_state import assert_broker_holds, topic_configs
from tests.e2e.engine import PARALLEL, EngineProject, existing_cluster_settings, state_resources
from tests.e2e.test_life_cycle import changes
from tests.eventually import eventually

STACK = "e2e"


def test_an_existing_estate_is_adopted_not_recreated(engine_project: EngineProject, broker: Broker) -> None:
    project = engine_project
    project.edit_topology(lambda topology: topology.update(domain="adopted"))
    settings = existing_cluster_settings(broker)
    stack = project.stack(STACK, settings)  # the stack file, with the admin password as a secret
    plan = load_plan(project.root, STACK)

    # Someone made all of it before this stack existed, and changed one topic since.
    apply_plan(broker.admin(), plan, broker.sasl_mechanism)
    events = "adopted.user.events"
    admin = broker.admin()
    set_topic_config(admin, events, "retention.ms", "3600000")

    imported = subprocess.run(
        [
            sys.executable,
            "-m",
            "infra",
            "--project-dir",
            str(project.root),
            "import",
            "--topology",
            str(project.root / "topology.yaml"),
            "--stack",
            STACK,
            "--bootstrap-servers",
            broker.bootstrap,
            "--security-protocol",
            broker.security_protocol,
            "--sasl-mechanism",
            broker.sasl_mechanism,
            "--username",
            broker.admin_user,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "KAFKA_ADMIN_PASSWORD": broker.admin_password},
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    adopt = yaml.safe_load((project.root / f"import.{STACK}.yaml").read_text())["adopt"]
    assert sorted(adopt["topics"]) == sorted(topic.name for topic in plan.topics)
    assert sorted(adopt["acls"]) == sorted(acl.adoption_id for acl in plan.acls)

    project.write_settings(STACK, {**settings, "adopt": adopt})
    up = stack.up(parallel=PARALLEL)
    summary = changes(up)
    # Every topic and ACL imported, none created; the hand-made retention set back in the same update.
    assert summary.get("import") == len(plan.topics) + len(plan.acls), summary
    assert summary.get("update") == 1, summary
    adoptable = {"kafka:index/topic:Topic", "kafka:index/acl:Acl"}
    # Everything else was new: the stack, its component and explicit provider, users, passwords.
    others = [r for r in state_resources(stack) if r["type"] not in adoptable and "::default" not in r["urn"]]
    assert summary.get("create") == len(others), summary
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
