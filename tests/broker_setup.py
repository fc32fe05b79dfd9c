"""Setting a real broker up for a test through the code that ships: `make local`'s converge, over
the Kafka-admin core, exactly as a user's `kafka-platform local up` applies a plan."""

from __future__ import annotations

import secrets

from confluent_kafka.admin import AclBinding

from infra.live.cluster_admin import Grant, alter_topic_configs, delete_grants
from infra.live.converge import converge, planned_grant
from infra.live.kafka_broker import Broker
from infra.live.live_cluster import read_cluster
from infra.plan.model import Plan


def deploy_plan(broker: Broker, plan: Plan, passwords: dict[str, str] | None = None) -> dict[str, str]:
    """The plan's topics, one SCRAM user per service and exactly its ACLs on ``broker``; returns
    each service's password (generated unless ``passwords`` names them)."""
    passwords = passwords or {service.name: secrets.token_urlsafe(18) for service in plan.services}
    users = {service.principal: passwords[service.name] for service in plan.services}
    converge(broker.admin(), plan, read_cluster(broker), users, (broker.sasl_mechanism,))
    return passwords


def planned_grants(plan: Plan) -> set[Grant]:
    return {planned_grant(acl) for acl in plan.acls}


def set_topic_config(broker: Broker, topic: str, key: str, value: str) -> None:
    """One config of one topic changed by hand, as `kafka-configs --alter` would."""
    alter_topic_configs(broker.admin(), {topic: {key: value}})


def remove_acls(broker: Broker, bindings: list[AclBinding]) -> None:
    """These bindings removed by hand, as `kafka-acls --remove` would."""
    delete_grants(broker.admin(), [Grant.from_binding(binding) for binding in bindings])
