"""The dynamic providers behind grouped topics and service access, called as the engine's plugin
calls them, on the real broker: what they refuse (before changing anything), what they take
over, what they never delete, and that reading back shows what a hand changed."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    ConfigResource,
    ResourcePatternType,
    ResourceType,
)
from pulumi.dynamic import ResourceProvider

from infra.live.apply_plan import set_topic_config
from infra.live.kafka_broker import Broker
from infra.program.admin_api_provider import Refused, ServiceAccessProvider, TopicsProvider
from tests.e2e.broker_state import snapshot
from tests.eventually import eventually
from tests.integration.access_checks import can_authenticate, can_produce

RETENTION = "86400000"


def connection(broker: Broker) -> dict[str, Any]:
    return {
        "connection": {
            "bootstrap_servers": broker.bootstrap.split(","),
            "security_protocol": broker.security_protocol,
            "sasl_mechanism": broker.sasl_mechanism,
            "username": broker.admin_user,
        },
        "admin_password": broker.admin_password,
    }


def spec(partitions: int = 1, **config: str) -> dict[str, Any]:
    return {
        "partitions": partitions,
        "replication_factor": 1,
        "config": {"retention.ms": RETENTION, **config},
    }


def topics_props(broker: Broker, topics: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        **connection(broker),
        "family": "t",
        "topics": topics,
        "adopt": [],
        "removal": "delete",
        "allowed_removals": [],
        **fields,
    }


def read_back(provider: ResourceProvider, id_: str, props: dict[str, Any]) -> dict[str, Any]:
    """What a refresh reads: the resource's outputs as the cluster holds them."""
    outs = provider.read(id_, props).outs
    assert outs is not None
    return outs


@pytest.fixture
def prefix() -> str:
    return f"provider-{uuid.uuid4().hex[:8]}."


def topic_config(broker: Broker, topic: str) -> dict[str, tuple[str, bool]]:
    """key -> (value, set on the topic itself)."""
    admin = broker.admin()  # kept until the future has its result
    entries = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
    described = next(iter(entries.values())).result()
    return {key: (entry.value, not entry.is_default) for key, entry in described.items()}


def test_create_takes_over_what_matches_and_refuses_what_differs(broker: Broker, prefix: str) -> None:
    provider = TopicsProvider()
    a, b = f"{prefix}a", f"{prefix}b"
    props = topics_props(broker, {a: spec(2), b: spec(1, **{"cleanup.policy": "delete"})})
    provider.create(props)
    assert snapshot(broker).topics_under(prefix) == {a: 2, b: 1}
    # Again, as after an interrupted `up`: the topics are exactly as planned, so taken over.
    provider.create(props)
    assert read_back(provider, "t", props)["topics"] == props["topics"]

    # A topic someone changed by hand is not taken over unless adopted on purpose.
    set_topic_config(broker.admin(), a, "retention.ms", "3600000")
    with pytest.raises(
        Refused, match=rf"topic {a} already exists on the cluster and differs .*retention.ms 3600000"
    ):
        provider.create(props)
    assert topic_config(broker, a)["retention.ms"][0] == "3600000"
    provider.create({**props, "adopt": [a]})
    assert topic_config(broker, a)["retention.ms"][0] == RETENTION
    provider.delete("t", props)
    assert not snapshot(broker).topics_under(prefix)


def test_update_converges_and_deletes_only_what_left_the_plan(broker: Broker, prefix: str) -> None:
    provider = TopicsProvider()
    a, b, c = f"{prefix}a", f"{prefix}b", f"{prefix}c"
    olds = topics_props(broker, {a: spec(1, **{"segment.ms": "3600000"}), b: spec(1)})
    provider.create(olds)
    news = topics_props(broker, {a: spec(3), c: spec(1)})
    provider.update("t", olds, news)
    assert snapshot(broker).topics_under(prefix) == {a: 3, c: 1}
    value, on_topic = topic_config(broker, a)["segment.ms"]
    assert not on_topic, f"a config dropped from the plan returns to the broker default (has {value})"

    # Drift, read back as a refresh does, is repaired by the next update.
    set_topic_config(broker.admin(), c, "retention.ms", "1000")
    refreshed = eventually(
        lambda: read_back(provider, "t", news),
        lambda outs: outs["topics"][c]["config"]["retention.ms"] == "1000",
        what="the hand-set retention read back",
    )
    assert provider.diff("t", refreshed, news).changes
    provider.update("t", refreshed, news)
    assert topic_config(broker, c)["retention.ms"][0] == RETENTION
    assert not provider.diff("t", read_back(provider, "t", news), news).changes
    provider.delete("t", news)


def test_refusals_come_before_any_change(broker: Broker, prefix: str) -> None:
    provider = TopicsProvider()
    a, b = f"{prefix}a", f"{prefix}b"
    olds = topics_props(broker, {a: spec(2), b: spec(1)}, removal="keep")
    provider.create(olds)
    before = snapshot(broker).topics_under(prefix)

    shrink = copy.deepcopy(olds)
    shrink["topics"][a]["partitions"] = 1
    shrink["topics"][b]["config"]["retention.ms"] = "1000"
    with pytest.raises(Refused, match=rf"topic {a} has 2 partitions and would shrink to 1"):
        provider.update("t", olds, shrink)
    assert topic_config(broker, b)["retention.ms"][0] == RETENTION, "nothing else of the update was applied"

    # A protected stack: a topic may leave the plan only if the settings allow it, and then it
    # is released (kept on the cluster with its data), never deleted.
    without_b = topics_props(broker, {a: spec(2)}, removal="keep")
    with pytest.raises(Refused, match=rf"this stack is protected: {b} would leave it"):
        provider.update("t", olds, without_b)
    provider.update("t", olds, {**without_b, "allowed_removals": [b]})
    assert snapshot(broker).topics_under(prefix) == before
    provider.delete("t", olds)


def test_service_access_grants_exactly_its_acls_and_users(broker: Broker, prefix: str) -> None:
    provider = ServiceAccessProvider()
    topic = f"{prefix}events"
    TopicsProvider().create(topics_props(broker, {topic: spec(1)}))
    user, rotated = f"{prefix}svc", f"{prefix}svc-g2"
    write = f"User:{user} WRITE TOPIC {topic}"
    props = {
        **connection(broker),
        "service": "svc",
        "principals": [f"User:{user}"],
        "acls": {write: "ALLOW"},
        "users": {user: [broker.sasl_mechanism]},
        "passwords": {user: "first-password"},  # pragma: allowlist secret
    }
    provider.create(props)
    assert can_produce(broker, user, "first-password", topic)

    # A grant made by hand to the service's principal shows on a refresh; the update removes it.
    extra = AclBinding(
        ResourceType.TOPIC,
        f"{prefix}other",
        ResourcePatternType.LITERAL,
        f"User:{user}",
        "*",
        AclOperation.READ,
        AclPermissionType.ALLOW,
    )
    admin = broker.admin()  # kept until the future has its result
    for future in admin.create_acls([extra]).values():
        future.result()
    refreshed = eventually(
        lambda: read_back(provider, "svc", props),
        lambda outs: f"User:{user} READ TOPIC {prefix}other" in outs["acls"],
        what="the hand-made grant read back",
    )
    assert provider.diff("svc", refreshed, props).changes
    provider.update("svc", refreshed, props)
    assert set(read_back(provider, "svc", props)["acls"]) == {write}

    # A rotation: the new user beside the old with the same grants, then the old one revoked.
    both = {
        **props,
        "principals": [f"User:{user}", f"User:{rotated}"],
        "acls": {write: "ALLOW", f"User:{rotated} WRITE TOPIC {topic}": "ALLOW"},
        "users": {user: [broker.sasl_mechanism], rotated: [broker.sasl_mechanism]},
        "passwords": {user: "first-password", rotated: "second-password"},  # pragma: allowlist secret
    }
    provider.update("svc", props, both)
    assert can_produce(broker, rotated, "second-password", topic)
    only_new = {
        **both,
        "principals": [f"User:{rotated}"],
        "acls": {f"User:{rotated} WRITE TOPIC {topic}": "ALLOW"},
        "users": {rotated: [broker.sasl_mechanism]},
        "passwords": {rotated: "second-password"},  # pragma: allowlist secret
    }
    provider.update("svc", both, only_new)
    assert not can_authenticate(broker, user, "first-password")
    assert not [acl for acl in snapshot(broker).acls if acl[3] == f"User:{user}"]
    provider.delete("svc", only_new)
    assert rotated not in snapshot(broker).users
    assert not [acl for acl in snapshot(broker).acls if acl[3] == f"User:{rotated}"]
    TopicsProvider().delete("t", topics_props(broker, {topic: spec(1)}))
