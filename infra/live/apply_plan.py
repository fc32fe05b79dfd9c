"""Apply a plan to a real broker with confluent-kafka's AdminClient: topics, SCRAM users, ACLs.

Used where no Pulumi engine runs: the integration tests and `make local` without Docker.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

if TYPE_CHECKING:  # the dynamic provider imports this module on every preview: no pydantic
    from infra.plan.model import Plan

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
    "CREATE": AclOperation.CREATE,
    "DELETE": AclOperation.DELETE,
}
PATTERNS = {"LITERAL": ResourcePatternType.LITERAL, "PREFIXED": ResourcePatternType.PREFIXED}
# Matches every ACL binding on the cluster (DescribeAcls, DeleteAcls).
EVERY_ACL = AclBindingFilter(
    ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
)
MECHANISMS = {"SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256, "SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512}
SCRAM_ITERATIONS = 4096


def acl_bindings(plan: Plan) -> list[AclBinding]:
    return [
        AclBinding(
            RESOURCE_TYPES[acl.resource_type],
            acl.resource_name,
            PATTERNS[acl.pattern_type],
            f"User:{acl.principal}",
            acl.host,
            OPERATIONS[acl.operation],
            AclPermissionType.ALLOW,
        )
        for acl in plan.acls
    ]


def matching(binding: AclBinding) -> AclBindingFilter:
    """The filter that matches exactly ``binding`` (to delete it)."""
    return AclBindingFilter(
        binding.restype,
        binding.name,
        binding.resource_pattern_type,
        binding.principal,
        binding.host,
        binding.operation,
        binding.permission_type,
    )


def delete_acls(admin: AdminClient, bindings: list[AclBinding]) -> None:
    for future in admin.delete_acls([matching(binding) for binding in bindings], request_timeout=30).values():
        future.result()


def set_topic_config(admin: AdminClient, topic: str, key: str, value: str) -> None:
    """One config of one topic, set as `kafka-configs --alter` would."""
    set_topic_configs(admin, {topic: {key: value}})


def set_topic_configs(admin: AdminClient, configs: dict[str, dict[str, str]]) -> None:
    """Per topic, set these configs (incrementally: others stay as they are)."""
    resources = [
        ConfigResource(
            ConfigResource.Type.TOPIC,
            topic,
            incremental_configs=[
                ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                for key, value in values.items()
            ],
        )
        for topic, values in configs.items()
    ]
    if resources:
        for future in admin.incremental_alter_configs(resources).values():
            future.result()


def apply_plan(
    admin: AdminClient, plan: Plan, mechanism: str, passwords: dict[str, str] | None = None
) -> dict[str, str]:
    """Create what the plan describes (idempotent); returns each service's password, generated
    unless ``passwords`` gives them."""
    new_topics = [
        NewTopic(
            t.name, num_partitions=t.partitions, replication_factor=t.replication_factor, config=t.config
        )
        for t in plan.topics
    ]
    existing: list[str] = []
    for name, future in admin.create_topics(new_topics, request_timeout=30).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            existing.append(name)
    # Topics that were already there get the plan's configs back (what a hand changed).
    planned = {topic.name: topic.config for topic in plan.topics}
    set_topic_configs(admin, {name: planned[name] for name in existing})
    passwords = passwords or {service.name: secrets.token_urlsafe(18) for service in plan.services}
    upserts = [
        UserScramCredentialUpsertion(
            service.principal,
            ScramCredentialInfo(MECHANISMS[mechanism], SCRAM_ITERATIONS),
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
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {str(binding) for binding in admin.describe_acls(EVERY_ACL, request_timeout=10).result()}
        if wanted <= found:
            return
        time.sleep(0.2)
    raise TimeoutError(f"ACLs not visible on the broker after {timeout}s")
