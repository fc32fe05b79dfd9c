"""The dynamic providers behind grouped topics and service access, called as the engine's plugin
calls them, on the real broker: what they refuse (before changing anything), what they take
over, what they never delete, and that reading back shows what a hand changed."""

from __future__ import annotations

import copy
import dataclasses
import socket
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from pulumi.dynamic import Config, ConfigureRequest, ResourceProvider

from infra.live.cluster_admin import (
    CONNECT_WITHIN_S,
    AdminLogin,
    ClusterUnreachable,
    Grant,
    ScramCredential,
    delete_scram_users,
    read_grants,
    upsert_scram_users,
)
from infra.live.kafka_broker import SCRAM_MECHANISMS as MECHANISMS_OF_ADMIN
from infra.live.kafka_broker import Broker
from infra.model.stacks import ADMIN_PASSWORD_KEY, PROJECT
from infra.program.admin_api_provider import Refused, ServiceAccessProvider, TopicsProvider
from infra.program.kafka_preflight import existing_cluster_problems
from infra.program.previous_deployment import PreviousDeployment
from tests.broker_setup import remove_acls, set_topic_config
from tests.e2e.broker_state import snapshot
from tests.eventually import eventually, wait_for_acls, wait_for_topic_config
from tests.integration.access_checks import can_authenticate, can_produce
from tests.project_files import Project

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


def access_props(
    broker: Broker, user: str, acls: dict[str, str], password: str, mechanism: str | None = None
) -> dict[str, Any]:
    """A `ServiceAccess` of service `svc`: one SCRAM user and these grants."""
    return {
        **connection(broker),
        "service": "svc",
        "principals": [f"User:{user}"],
        "acls": acls,
        "users": {user: [mechanism or broker.sasl_mechanism]},
        "passwords": {user: password},
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


def test_create_takes_over_only_what_is_adopted(broker: Broker, prefix: str) -> None:
    provider = TopicsProvider()
    a, b = f"{prefix}a", f"{prefix}b"
    props = topics_props(broker, {a: spec(2), b: spec(1, **{"cleanup.policy": "delete"})})
    provider.create(props)
    assert snapshot(broker).topics_under(prefix) == {a: 2, b: 1}
    # Again, as after an interrupted `up`: exactly as planned and empty, yet maybe another
    # stack's (topic names carry no stack name), so refused until adopted.
    with pytest.raises(
        Refused, match=rf"topic {a} already exists on the cluster \(exactly as planned; it holds no record\)"
    ):
        provider.create(props)
    provider.create({**props, "adopt": [a, b]})
    assert read_back(provider, "t", props)["topics"] == props["topics"]

    # A topic someone changed by hand is not taken over unless adopted on purpose.
    set_topic_config(broker, a, "retention.ms", "3600000")
    with pytest.raises(
        Refused, match=rf"topic {a} already exists on the cluster and differs .*retention.ms 3600000"
    ):
        provider.create(props)
    assert topic_config(broker, a)["retention.ms"][0] == "3600000"
    provider.create({**props, "adopt": [a, b]})
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
    set_topic_config(broker, c, "retention.ms", "1000")
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
    with pytest.raises(Refused, match=rf"this stack is protected: topics {b} would leave it"):
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
    props = access_props(broker, user, {write: "ALLOW"}, "first-password")  # pragma: allowlist secret
    created = provider.create(props).outs
    assert created is not None
    props = {**props, "cluster_id": created["cluster_id"]}  # as the state's outputs hold it
    assert can_produce(broker, user, "first-password", topic)

    # A grant made by hand to the service's principal is not the stack's: a refresh does not read
    # it into the state, so neither `up` nor `up --refresh` removes it (`drift` reports it).
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
    wait_for_acls(admin, present=[extra])
    refreshed = read_back(provider, "svc", props)
    assert set(refreshed["acls"]) == {write}
    assert not provider.diff("svc", refreshed, props).changes
    provider.update("svc", refreshed, props)
    wait_for_acls(admin, present=[extra])
    remove_acls(broker, [extra])

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


# --- what the stack does not own, and what happens when a call fails half-way ------------------


def produce_one(broker: Broker, topic: str) -> None:
    producer = Producer(broker.client_config())
    producer.produce(topic, b"a record someone relies on", key=b"k")
    assert producer.flush(15) == 0


def test_update_never_takes_over_a_topic_with_data_it_does_not_own(broker: Broker, prefix: str) -> None:
    """The data-losing case: a family the stack manages gains a topic whose name someone already
    uses. Neither create nor update may change it (partitions, retention) until it is adopted."""
    provider = TopicsProvider()
    ours, theirs = f"{prefix}ours", f"{prefix}theirs"
    olds = topics_props(broker, {ours: spec(1)})
    provider.create(olds)
    admin = broker.admin()  # kept until the futures have their results
    created = admin.create_topics([NewTopic(theirs, 2, 1, config={"retention.ms": "999999999"})])
    created[theirs].result(timeout=30)
    produce_one(broker, theirs)

    news = topics_props(broker, {ours: spec(1), theirs: spec(6)})
    for call in (lambda: provider.update("t", olds, news), lambda: provider.create(news)):
        with pytest.raises(Refused, match=rf"topic {theirs} already exists on the cluster and differs"):
            call()
        assert snapshot(broker).topics_under(prefix) == {ours: 1, theirs: 2}
        assert topic_config(broker, theirs)["retention.ms"][0] == "999999999"

    # Exactly as planned but holding records: still not taken over.
    same = topics_props(broker, {ours: spec(1), theirs: spec(2, **{"retention.ms": "999999999"})})
    with pytest.raises(
        Refused,
        match=rf"topic {theirs} already exists on the cluster \(exactly as planned; it holds records\)",
    ):
        provider.update("t", olds, same)
    # Adopted on purpose: converged to the plan.
    provider.update("t", olds, {**news, "adopt": [theirs]})
    assert snapshot(broker).topics_under(prefix) == {ours: 1, theirs: 6}
    provider.delete("t", {**news, "adopt": [theirs]})


def test_a_failed_create_leaves_nothing_behind(broker: Broker, prefix: str) -> None:
    """The SDK's contract: a create that fails has not created the resource. One bad topic in a
    batch, or a grant the broker refuses after the users were made: nothing stays."""
    good, bad = f"{prefix}good", f"{prefix}bad"
    batch = topics_props(broker, {good: spec(1), bad: spec(1, **{"retention.ms": "not-a-number"})})
    with pytest.raises(Exception, match=rf"topic {bad}"):
        TopicsProvider().create(batch)
    assert snapshot(broker).topics_under(prefix) == {}

    user = f"{prefix}svc"
    access = access_props(
        broker,
        user,
        {f"User:{user} WRITE TOPIC {prefix}events": "ALLOW", f"User:{user} READ GROUP ": "ALLOW"},
        "some-password",  # pragma: allowlist secret
    )
    with pytest.raises(Exception):  # noqa: B017 (the broker's or the client's refusal)
        ServiceAccessProvider().create(access)
    state = snapshot(broker)
    assert user not in state.users
    assert not [acl for acl in state.acls if acl[3] == f"User:{user}"]


def test_grants_and_mechanisms_added_by_hand_are_neither_read_nor_fatal(broker: Broker, prefix: str) -> None:
    """Grants the plan never makes (DESCRIBE_CONFIGS, ALL, a LITERAL `*`) and a second SCRAM
    mechanism on a service's principal: create, update and read work, within seconds, and a
    refresh shows no change, so `up` and `up --refresh` agree."""
    provider = ServiceAccessProvider()
    user = f"{prefix}svc"
    write = f"User:{user} WRITE TOPIC {prefix}events"
    password = "first-password"  # pragma: allowlist secret
    props = access_props(broker, user, {write: "ALLOW"}, password, mechanism="SCRAM-SHA-512")
    provider.create(props)
    by_hand = [
        AclBinding(
            ResourceType.TOPIC,
            f"{prefix}events",
            ResourcePatternType.LITERAL,
            f"User:{user}",
            "*",
            op,
            AclPermissionType.ALLOW,
        )
        for op in (AclOperation.DESCRIBE_CONFIGS, AclOperation.ALL)
    ] + [
        AclBinding(
            ResourceType.TOPIC,
            "*",
            ResourcePatternType.LITERAL,
            f"User:{user}",
            "*",
            AclOperation.READ,
            AclPermissionType.ALLOW,
        )
    ]
    admin = broker.admin()
    for future in admin.create_acls(by_hand).values():
        future.result()
    upsert_scram_users(admin, {user: ScramCredential(("SCRAM-SHA-256",), "first-password")})
    wait_for_acls(admin, present=by_hand)

    started = time.monotonic()
    refreshed = read_back(provider, "svc", props)
    assert (refreshed["acls"], refreshed["users"]) == (props["acls"], props["users"])
    assert not provider.diff("svc", refreshed, props).changes
    provider.update("svc", refreshed, props)
    provider.create(props)  # as again after an interrupted run: its own user logs in, taken over
    assert time.monotonic() - started < 20
    wait_for_acls(admin, present=by_hand)  # still there: not the stack's to remove

    provider.delete("svc", props)
    assert {Grant.from_binding(b) for b in by_hand} <= read_grants(admin, [f"User:{user}"])
    remove_acls(broker, by_hand)
    delete_scram_users(admin, [user])


def test_a_user_that_exists_and_is_not_the_stacks_is_refused_until_adopted(
    broker: Broker, prefix: str
) -> None:
    provider = ServiceAccessProvider()
    user = f"{prefix}svc"
    admin = broker.admin()
    upsert_scram_users(admin, {user: ScramCredential((broker.sasl_mechanism,), "their-password")})
    props = access_props(broker, user, {}, "stack-password")  # pragma: allowlist secret
    with pytest.raises(
        Refused, match=rf"SCRAM user {user} already exists on the cluster and is not this stack's"
    ):
        provider.create(props)
    assert can_authenticate(broker, user, "their-password")
    provider.create({**props, "adopt_users": [user]})
    assert can_authenticate(broker, user, "stack-password")
    provider.delete("svc", props)


def test_a_stack_moved_to_another_cluster_is_deployed_there_in_full(broker: Broker, prefix: str) -> None:
    """The state was written for another cluster (its id differs): the update creates the users
    and grants here instead of assuming they exist."""
    topic = f"{prefix}events"
    user = f"{prefix}svc"
    write = f"User:{user} WRITE TOPIC {topic}"
    topics = topics_props(broker, {topic: spec(1)})
    props = access_props(broker, user, {write: "ALLOW"}, "the-password")  # pragma: allowlist secret
    elsewhere = {"cluster_id": "another-cluster"}
    TopicsProvider().update("t", {**topics, **elsewhere}, topics)
    ServiceAccessProvider().update("svc", {**props, **elsewhere}, props)
    assert snapshot(broker).topics_under(prefix) == {topic: 1}
    assert can_produce(broker, user, "the-password", topic)
    ServiceAccessProvider().delete("svc", props)
    TopicsProvider().delete("t", topics)


def test_an_unreachable_cluster_is_one_clear_error_within_seconds(broker: Broker) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    props = topics_props(broker, {"x": spec(1)})
    props["connection"] = {**props["connection"], "bootstrap_servers": [closed]}
    started = time.monotonic()
    with pytest.raises(ClusterUnreachable, match=rf"the Kafka cluster at {closed} as 'platform-admin'"):
        TopicsProvider().create(props)
    assert time.monotonic() - started < CONNECT_WITHIN_S + 5
    # The next resource of the same run is told at once.
    started = time.monotonic()
    with pytest.raises(ClusterUnreachable):
        TopicsProvider().read("t", props)
    assert time.monotonic() - started < 1


def test_the_admin_password_comes_from_the_stack_config_after_a_rotation(broker: Broker, prefix: str) -> None:
    """A rotated admin password: a resource's state still holds the old one (or, written by this
    release, none), yet read and delete log in with the stack's current config at once."""
    topic = f"{prefix}rotated"
    state = {**topics_props(broker, {topic: spec(1)}), "admin_password_config": ADMIN_PASSWORD_KEY}
    TopicsProvider().create(state)
    admin = broker.admin()
    rotated = f"{broker.admin_password}-rotated"
    upsert_scram_users(admin, {broker.admin_user: ScramCredential(MECHANISMS_OF_ADMIN, rotated)})
    try:
        provider = TopicsProvider()
        provider.configure(ConfigureRequest(Config({ADMIN_PASSWORD_KEY: rotated}, PROJECT)))
        started = time.monotonic()
        assert read_back(provider, "t", state)["topics"] == state["topics"]
        provider.delete("t", state)
        assert time.monotonic() - started < 15
        assert snapshot(dataclasses.replace(broker, admin_password=rotated)).topics_under(prefix) == {}
    finally:
        with_rotated = AdminClient(broker.client_config(password=rotated))
        upsert_scram_users(
            with_rotated, {broker.admin_user: ScramCredential(MECHANISMS_OF_ADMIN, broker.admin_password)}
        )


def test_the_preflight_leaves_an_empty_topic_as_planned_to_the_provider(
    broker: Broker, project: Project
) -> None:
    """After an `up` that failed part-way, the topics its successful groups made are in their
    groups' state but not in the stack's outputs (written only on success): the preflight must not
    refuse them, while a topic that holds records or differs is still refused before any change."""
    plan = project.edit_topology(lambda t: t.update(domain=f"pre{uuid.uuid4().hex[:6]}")).plan("local")
    topic = plan.topics[0]
    admin = broker.admin()
    admin.create_topics(
        [NewTopic(topic.name, topic.partitions, topic.replication_factor, config=topic.config)]
    )[topic.name].result(30)
    login = AdminLogin(
        tuple(broker.bootstrap.split(",")),
        broker.security_protocol,
        broker.sasl_mechanism,
        broker.admin_user,
        broker.admin_password,
    )
    wait_for_topic_config(admin, topic.name, topic.config)
    assert existing_cluster_problems(login, plan, PreviousDeployment())[0] == []
    produce_one(broker, topic.name)
    problems, _ = existing_cluster_problems(login, plan, PreviousDeployment())
    assert problems == [
        f"topic {topic.name} already exists on the cluster (exactly as planned; it holds records), "
        "and it is not this stack's: nothing was changed. Adopt it on purpose: list it in "
        "settings.adopt.topics (`kafka-platform import` writes the list; also for a topic an "
        "interrupted `pulumi up` of this stack created)"
    ]
    admin.delete_topics([topic.name])[topic.name].result(30)
