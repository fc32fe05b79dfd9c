"""What MSK and existing clusters both do through the `kafka` provider (the Kafka Admin API):
an admin connection, topics, and the plan's ACLs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kafka as kafka

from infra.credential_rotation import Generations
from infra.names import generation_suffix
from infra.plan_model import AclBinding, Plan, PlannedTopic
from infra.program.protection import kept

ACL_RESOURCE_TYPES = {
    "TOPIC": "Topic",
    "GROUP": "Group",
    "CLUSTER": "Cluster",
    "TRANSACTIONAL_ID": "TransactionalID",
}
ACL_OPERATIONS = {
    "READ": "Read",
    "WRITE": "Write",
    "DESCRIBE": "Describe",
    "IDEMPOTENT_WRITE": "IdempotentWrite",
    "CREATE": "Create",
    "DELETE": "Delete",
}
# The provider's names for the SASL mechanisms (terraform-provider-kafka `sasl_mechanism`).
PROVIDER_MECHANISMS = {"SCRAM-SHA-512": "scram-sha512", "SCRAM-SHA-256": "scram-sha256", "PLAIN": "plain"}


@dataclass(frozen=True)
class AdminConnection:
    """How Pulumi reaches the brokers as the platform's admin identity."""

    bootstrap_servers: pulumi.Input[Sequence[str]]
    username: pulumi.Input[str]
    password: pulumi.Output[str]
    sasl_mechanism: str  # SCRAM-SHA-512 | SCRAM-SHA-256 | PLAIN
    tls: bool
    ca_cert: pulumi.Input[str] | None = None
    skip_tls_verify: bool = False


def admin_provider(
    name: str, connection: AdminConnection, parent: pulumi.Resource, after: Sequence[pulumi.Resource] = ()
) -> kafka.Provider:
    return kafka.Provider(
        name,
        bootstrap_servers=connection.bootstrap_servers,
        sasl_username=connection.username,
        sasl_password=connection.password,
        sasl_mechanism=PROVIDER_MECHANISMS[connection.sasl_mechanism],
        tls_enabled=connection.tls,
        ca_cert=connection.ca_cert,
        skip_tls_verify=connection.skip_tls_verify or None,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(after)),
    )


def manage_topics_and_acls(
    plan: Plan, provider: kafka.Provider, parent: pulumi.Resource, generations: Generations
) -> None:
    """Every planned topic (kept in protected stacks) and every planned ACL, through ``provider``;
    what settings.adopt lists is imported (`import`) instead of created. While a rotated
    credential's previous generation is still valid, its user keeps the same ACLs."""
    managed = pulumi.ResourceOptions(parent=parent, provider=provider)
    topic_options = kept(plan, parent, retain=True).merge(managed)
    adopted_topics, adopted_acls = set(plan.adoption.topics), set(plan.adoption.acls)
    for topic in plan.topics:
        adopt = pulumi.ResourceOptions(import_=topic.name if topic.name in adopted_topics else None)
        topic_resource(topic, topic_options.merge(adopt))
    for acl in plan.acls:
        adopt = pulumi.ResourceOptions(
            import_=acl_import_id(acl) if acl.adoption_id in adopted_acls else None
        )
        acl_resource(acl, managed.merge(adopt), generation_suffix(generations.current))
    if generations.previous is not None:
        for acl in plan.acls:
            previous = acl.model_copy(
                update={"principal": plan.principal_at(acl.service, generations.previous)}
            )
            acl_resource(previous, managed, generation_suffix(generations.previous))


def acl_import_id(acl: AclBinding) -> str:
    """terraform-provider-kafka's ACL id: principal|host|operation|permission|type|name|pattern."""
    return "|".join(
        [
            f"User:{acl.principal}",
            acl.host,
            ACL_OPERATIONS[acl.operation],
            acl.permission.capitalize(),
            ACL_RESOURCE_TYPES[acl.resource_type],
            acl.resource_name,
            acl.pattern_type.capitalize(),
        ]
    )


def topic_resource(topic: PlannedTopic, opts: pulumi.ResourceOptions | None) -> kafka.Topic:
    return kafka.Topic(
        topic.name,
        name=topic.name,
        partitions=topic.partitions,
        replication_factor=topic.replication_factor,
        config=topic.config,
        opts=opts,
    )


def acl_resource(acl: AclBinding, opts: pulumi.ResourceOptions | None, suffix: str = "") -> kafka.Acl:
    return kafka.Acl(
        acl.logical_name + suffix,
        acl_resource_type=ACL_RESOURCE_TYPES[acl.resource_type],
        acl_resource_name=acl.resource_name,
        resource_pattern_type_filter=acl.pattern_type.capitalize(),
        acl_operation=ACL_OPERATIONS[acl.operation],
        acl_permission_type=acl.permission.capitalize(),
        acl_principal=f"User:{acl.principal}",
        acl_host=acl.host,
        opts=opts,
    )
