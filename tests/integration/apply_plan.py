"""Apply a plan to a real broker with confluent-kafka's AdminClient: topics, SCRAM users, ACLs."""

from __future__ import annotations

import secrets
import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from infra.plan import Plan

RESOURCE_TYPES = {
    "TOPIC": ResourceType.TOPIC,
    "GROUP": ResourceType.GROUP,
    "CLUSTER": ResourceType.BROKER,  # librdkafka's name for the cluster resource
    "TRANSACTIONAL_ID": ResourceType.TRANSACTIONAL_ID,
}
OPERATIONS = {
    "READ": AclOperation.READ,
    "WRITE": AclOperation.WRITE,
    "DESCRIBE": AclOperation.DESCRIBE,
    "IDEMPOTENT_WRITE": AclOperation.IDEMPOTENT_WRITE,
}
MECHANISMS = {"SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256, "SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512}


def acl_bindings(plan: Plan) -> list[AclBinding]:
    return [
        AclBinding(
            RESOURCE_TYPES[acl.resource_type],
            acl.resource_name,
            ResourcePatternType.LITERAL,
            f"User:{acl.principal}",
            acl.host,
            OPERATIONS[acl.operation],
            AclPermissionType.ALLOW,
        )
        for acl in plan.acls
    ]


def apply_plan(admin: AdminClient, plan: Plan, mechanism: str) -> dict[str, str]:
    """Create what the plan describes; returns each service's (generated) password."""
    new_topics = [
        NewTopic(
            t.name, num_partitions=t.partitions, replication_factor=t.replication_factor, config=t.config
        )
        for t in plan.topics
    ]
    for future in admin.create_topics(new_topics, request_timeout=30).values():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    passwords = {service.name: secrets.token_urlsafe(18) for service in plan.services}
    upserts = [
        UserScramCredentialUpsertion(
            service.principal,
            ScramCredentialInfo(MECHANISMS[mechanism], 4096),
            passwords[service.name].encode(),
        )
        for service in plan.services
    ]
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result()
    for future in admin.create_acls(acl_bindings(plan), request_timeout=30).values():
        future.result()
    _wait_until_visible(admin, plan)
    return passwords


def _wait_until_visible(admin: AdminClient, plan: Plan, timeout: float = 30) -> None:
    """Brokers learn new ACLs from the metadata log a moment after the controller commits them."""
    wanted = {str(binding) for binding in acl_bindings(plan)}
    every = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {str(binding) for binding in admin.describe_acls(every, request_timeout=10).result()}
        if wanted <= found:
            return
        time.sleep(0.2)
    raise TimeoutError(f"ACLs not visible on the broker after {timeout}s")
