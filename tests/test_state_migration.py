"""`migrate-state`'s edit of an exported state: the per-object Kafka resources go, everything else
stays as it was, no reference to a forgotten resource is left, and the new layout is recorded."""

from __future__ import annotations

from typing import Any

from infra.program.state_migration import MIGRATED_LAYOUT, STATE_LAYOUT, STATE_LAYOUT_OUTPUT, migrate

PREFIX = "urn:pulumi:prod-msk::kafka-platform::"
STACK = f"{PREFIX}pulumi:pulumi:Stack::kafka-platform-prod-msk"
PLATFORM = f"{PREFIX}kafka-platform:msk:Platform::kafka"
ADMIN_PROVIDER = f"{PREFIX}kafka-platform:msk:Platform$pulumi:providers:kafka::kafka-admin"
GRANTED_PROVIDER = f"{PREFIX}kafka-platform:msk:Platform$pulumi:providers:kafka::kafka-admin-granted"
ADMIN_ACL = f"{PREFIX}kafka-platform:msk:Platform$kafka:index/acl:Acl::admin-acl-cluster-alter"
TOPIC = f"{PREFIX}kafka-platform:msk:Platform$kafka:index/topic:Topic::aura360.user.events"
ACL = f"{PREFIX}kafka-platform:msk:Platform$kafka:index/acl:Acl::acl-api-topic-aura360.user.events-write"
SECRET = f"{PREFIX}kubernetes:core/v1:Secret::api-kafka-credentials"


def resource(urn: str, **fields: Any) -> dict[str, Any]:
    return {"urn": urn, "type": urn.rsplit("::", 2)[-2].rsplit("$", 1)[-1], **fields}


def msk_deployment() -> dict[str, Any]:
    return {
        "manifest": {"time": "2026-12-01T00:00:00Z"},
        "resources": [
            resource(STACK, outputs={"topic_names": ["aura360.user.events"]}),
            resource(PLATFORM, parent=STACK),
            resource(ADMIN_PROVIDER, parent=PLATFORM, id="p1"),
            resource(ADMIN_ACL, parent=PLATFORM, provider=f"{ADMIN_PROVIDER}::p1"),
            resource(GRANTED_PROVIDER, parent=PLATFORM, id="p2", dependencies=[ADMIN_ACL]),
            resource(TOPIC, parent=PLATFORM, provider=f"{GRANTED_PROVIDER}::p2", protect=True),
            resource(ACL, parent=PLATFORM, provider=f"{GRANTED_PROVIDER}::p2"),
            resource(
                SECRET,
                dependencies=[TOPIC, ADMIN_ACL],
                propertyDependencies={"data": [TOPIC], "metadata": [ADMIN_ACL]},
                deletedWith=TOPIC,
            ),
        ],
    }


def test_per_object_resources_and_their_unused_provider_are_forgotten() -> None:
    migration = migrate(msk_deployment())
    urns = [r["urn"] for r in migration.deployment["resources"]]
    # MSK's admin grants stay per resource, with the provider they use.
    assert urns == [STACK, PLATFORM, ADMIN_PROVIDER, ADMIN_ACL, SECRET]
    assert dict(migration.forgotten) == {"topics": 1, "ACLs": 1, "kafka providers": 1}
    secret = migration.deployment["resources"][-1]
    assert secret["dependencies"] == [ADMIN_ACL]
    assert secret["propertyDependencies"] == {"data": [], "metadata": [ADMIN_ACL]}
    assert "deletedWith" not in secret


def test_the_layout_is_recorded_and_the_input_is_left_alone() -> None:
    original = msk_deployment()
    migration = migrate(original)
    assert migration.needed
    outputs = migration.deployment["resources"][0]["outputs"]
    assert outputs == {"topic_names": ["aura360.user.events"], STATE_LAYOUT_OUTPUT: MIGRATED_LAYOUT}
    assert original == msk_deployment(), "the export itself is not edited"


def test_a_state_in_the_grouped_layout_needs_nothing() -> None:
    grouped = msk_deployment()
    grouped["resources"] = [r for r in grouped["resources"] if r["urn"] in (STACK, PLATFORM)]
    grouped["resources"][0]["outputs"][STATE_LAYOUT_OUTPUT] = STATE_LAYOUT
    assert not migrate(grouped).needed


def test_a_migrated_state_needs_nothing() -> None:
    once = migrate(msk_deployment()).deployment
    again = migrate(once)
    assert not again.needed and not again.forgotten
    assert again.deployment == once
