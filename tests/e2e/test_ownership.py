"""What a protected existing-cluster stack owns, under the real engine on the real broker: a topic
it does not own is refused in `preview` and `up` with nothing changed; a grant made by hand is
left alone by `up` and `up --refresh` alike; a rotated admin password is used at once, also for
what the program no longer registers; and retiring a whole family and a whole service, allowed
by `allow_deletes`, works in one `up` and leaves nothing to clean up."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from pulumi import automation as auto

from infra.live.cluster_admin import ScramCredential, upsert_scram_users
from infra.live.kafka_broker import SCRAM_MECHANISMS, Broker
from infra.model.stacks import ADMIN_PASSWORD_KEY
from infra.plan.resolve import load_plan
from tests.broker_setup import remove_acls
from tests.e2e.broker_state import snapshot
from tests.e2e.engine import PARALLEL, EngineProject, existing_cluster_settings, state_resources
from tests.eventually import wait_for_acls

STACK = "e2e-owned"
DOMAIN = "owned"


def _with_legacy_topic(topology: dict[str, Any]) -> None:
    """A topic in the `user` family whose name someone already uses, and a new family beside it."""
    topology["topics"]["user.legacy"] = {"partitions": 6, "retention": "1d"}
    topology["topics"]["audit.trail"] = {"partitions": 1}
    topology["services"]["api"]["produces"] = [
        *topology["services"]["api"]["produces"],
        "user.legacy",
        "audit.trail",
    ]


def _without_legacy_topic(topology: dict[str, Any]) -> None:
    for key in ("user.legacy", "audit.trail"):
        del topology["topics"][key]
    topology["services"]["api"]["produces"] = ["user.events", "guardian.requests", "vectordb.ingest"]


def _without_vectordb(topology: dict[str, Any]) -> None:
    """The whole `vectordb` family and the `vectordb-ingest` service retired."""
    del topology["topics"]["vectordb.ingest"]
    del topology["services"]["vectordb-ingest"]
    topology["services"]["api"]["produces"] = ["user.events", "guardian.requests"]
    topology["events"] = {k: v for k, v in topology["events"].items() if v.get("topic") != "vectordb.ingest"}


def test_a_protected_stack_owns_only_what_it_made_and_retires_on_purpose(
    engine_project: EngineProject, broker: Broker
) -> None:
    project = engine_project
    project.edit_topology(lambda topology: topology.update(domain=DOMAIN))
    settings = existing_cluster_settings(broker, protection={"protect": True})
    stack = project.stack(STACK, settings)
    stack.up(parallel=PARALLEL)

    # 1. Someone's topic, with data, in a family the stack manages: refused in preview and up.
    legacy = f"{DOMAIN}.user.legacy"
    admin = broker.admin()  # kept until the futures have their results
    admin.create_topics([NewTopic(legacy, 2, 1, config={"retention.ms": "999999999"})])[legacy].result(30)
    producer = Producer(broker.client_config())
    producer.produce(legacy, b"someone's record", key=b"k")
    assert producer.flush(15) == 0
    deployed = snapshot(broker)
    resources = len(state_resources(stack))
    project.edit_topology(_with_legacy_topic)
    for attempt in (stack.preview, stack.up):
        with pytest.raises(auto.CommandError, match="refused before any change was made") as refused:
            attempt(parallel=PARALLEL)
        assert f"topic {legacy} already exists on the cluster and differs from the plan" in str(refused.value)
    assert snapshot(broker) == deployed, "not the topic, and not the new family of the same change"
    assert len(state_resources(stack)) == resources
    project.edit_topology(_without_legacy_topic)

    # 2. A grant made by hand to a service's principal: `up --refresh` and `up` agree to leave it.
    plan = load_plan(project.root, STACK)
    guardian = plan.service("guardian").principal
    by_hand = AclBinding(
        ResourceType.TOPIC,
        f"{DOMAIN}.user.events",
        ResourcePatternType.LITERAL,
        f"User:{guardian}",
        "*",
        AclOperation.DESCRIBE_CONFIGS,
        AclPermissionType.ALLOW,
    )
    admin.create_acls([by_hand])[by_hand].result(30)
    wait_for_acls(admin, present=[by_hand])
    stack.preview(parallel=PARALLEL, refresh=True, expect_no_changes=True)
    stack.up(parallel=PARALLEL, refresh=True)
    stack.up(parallel=PARALLEL)
    wait_for_acls(admin, present=[by_hand])
    remove_acls(broker, [by_hand])

    # 3. The admin password rotated on the cluster and in the stack's config: used at once.
    rotated = f"{broker.admin_password}-rotated"
    upsert_scram_users(admin, {broker.admin_user: ScramCredential(SCRAM_MECHANISMS, rotated)})
    now = dataclasses.replace(broker, admin_password=rotated)
    try:
        stack.set_config(ADMIN_PASSWORD_KEY, auto.ConfigValue(rotated, secret=True))
        # A refresh is configured from the last deployment unless it runs the program (Pulumi's
        # design): the first `up` after a rotation, or `--run-program`, uses the new password.
        with pytest.raises(auto.CommandError, match="refresh with `--run-program`"):
            stack.preview(parallel=PARALLEL, refresh=True)
        stack.preview(parallel=PARALLEL, refresh=True, run_program=True, expect_no_changes=True)

        # 4. Retire the `vectordb` family and the `vectordb-ingest` service on purpose.
        ingest = plan.service("vectordb-ingest").principal
        allowed = {
            "protect": True,
            "allow_deletes": {"topics": [f"{DOMAIN}.vectordb.ingest"], "services": ["vectordb-ingest"]},
        }
        project.write_settings(STACK, {**settings, "protection": allowed})
        project.edit_topology(_without_vectordb)
        stack.up(parallel=PARALLEL)
        after = snapshot(now)
        assert f"{DOMAIN}.vectordb.ingest" in after.topics, "a protected stack releases, never deletes"
        assert ingest not in after.users
        assert not [acl for acl in after.acls if acl[3] == f"User:{ingest}"]
        names = {r["urn"].rsplit("::", 1)[-1]: r for r in state_resources(stack)}
        assert names["topics-vectordb"]["outputs"]["topics"] == {} and not names["topics-vectordb"].get(
            "protect"
        )
        # The next `up` removes the emptied groups; then nothing is left to do.
        stack.up(parallel=PARALLEL)
        left = {r["urn"].rsplit("::", 1)[-1] for r in state_resources(stack)}
        assert "topics-vectordb" not in left and "access-vectordb-ingest" not in left
        stack.preview(parallel=PARALLEL, expect_no_changes=True)
        assert f"{DOMAIN}.vectordb.ingest" in snapshot(now).topics

        project.write_settings(STACK, {**settings, "protection": {"protect": False}})
        stack.up(parallel=PARALLEL)
        stack.destroy(parallel=PARALLEL)
    finally:
        upsert_scram_users(
            now.admin(), {broker.admin_user: ScramCredential(SCRAM_MECHANISMS, broker.admin_password)}
        )
    for name in (legacy, f"{DOMAIN}.vectordb.ingest"):
        admin.delete_topics([name])[name].result(30)
