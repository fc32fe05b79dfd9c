"""What a broker holds, read with the AdminClient: to compare with a plan, or with itself."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.admin import (
    AclBinding,
    ConfigResource,
)

from infra.live.cluster_admin import EVERY_ACL
from infra.live.kafka_broker import Broker
from infra.plan.model import Plan
from tests.broker_setup import planned_grants

INTERNAL_TOPIC_PREFIXES = ("__", "_schemas", "_redpanda")


Acl = tuple[str, str, str, str, str, str, str]  # type, name, pattern, principal, host, operation, permission


def acl_key(binding: AclBinding) -> Acl:
    return (
        binding.restype.name,
        binding.name,
        binding.resource_pattern_type.name,
        binding.principal,
        binding.host,
        binding.operation.name,
        binding.permission_type.name,
    )


@dataclass(frozen=True)
class BrokerState:
    topics: dict[str, int]  # name -> partitions
    acls: frozenset[Acl]
    users: frozenset[str]

    def topics_under(self, prefix: str) -> dict[str, int]:
        return {name: count for name, count in self.topics.items() if name.startswith(prefix)}


def snapshot(broker: Broker) -> BrokerState:
    admin = broker.admin()
    topics = {
        name: len(metadata.partitions)
        for name, metadata in admin.list_topics(timeout=15).topics.items()
        if not name.startswith(INTERNAL_TOPIC_PREFIXES)
    }
    acls = frozenset(
        acl_key(binding) for binding in admin.describe_acls(EVERY_ACL, request_timeout=15).result()
    )
    users = frozenset(admin.describe_user_scram_credentials(request_timeout=15).result())
    return BrokerState(topics=topics, acls=acls, users=users)


def topic_configs(broker: Broker, plan: Plan) -> dict[str, dict[str, str]]:
    """Each planned topic's configs on the broker, for the keys the plan sets."""
    admin = broker.admin()
    resources = [ConfigResource(ConfigResource.Type.TOPIC, topic.name) for topic in plan.topics]
    described = {
        resource.name: future.result() for resource, future in admin.describe_configs(resources).items()
    }
    return {
        topic.name: {key: described[topic.name][key].value for key in topic.config} for topic in plan.topics
    }


def assert_broker_holds(broker: Broker, plan: Plan) -> None:
    """The plan's topics (partitions, configs), SCRAM users and exactly its ACLs are on the broker."""
    state = snapshot(broker)
    planned = {topic.name: topic.partitions for topic in plan.topics}
    assert {name: state.topics.get(name) for name in planned} == planned
    assert topic_configs(broker, plan) == {topic.name: topic.config for topic in plan.topics}
    principals = {principal.name for principal in plan.principals}
    assert principals <= state.users
    ours = {acl for acl in state.acls if acl[3].removeprefix("User:") in principals}
    assert ours == {acl_key(grant.binding()) for grant in planned_grants(plan)}
