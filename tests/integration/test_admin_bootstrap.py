"""MSK's `acl_bootstrap` on a real broker that, like MSK, has no super user for the platform's admin.

With `allow.everyone.if.no.acl.found=true`, whatever no ACL mentions is open to everyone, and
the first ACL on a resource closes it to everyone else. The program grants its admin identity
cluster ALTER first and alone (`infra.program.msk.ADMIN_BOOTSTRAP_GRANT`), then the rest. These
tests replay exactly that list, in that order, as the admin itself.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator

import pytest
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
)

from infra.live.cluster_admin import EVERY_ACL
from infra.live.kafka_broker import Broker, BrokerOptions, broker_from_environment, local_kafka, missing_tools
from infra.program.msk import ADMIN_BOOTSTRAP_GRANT, ADMIN_TOPIC_OPERATIONS
from tests.eventually import eventually, wait_for_topic_config

ADMIN = "msk-style-admin"
DOMAIN = "bootstrap."
TYPES = {"Cluster": ResourceType.BROKER, "Topic": ResourceType.TOPIC}
PATTERNS = {"Literal": ResourcePatternType.LITERAL, "Prefixed": ResourcePatternType.PREFIXED}
OPERATIONS = {
    "Alter": AclOperation.ALTER,
    "Describe": AclOperation.DESCRIBE,
    "Create": AclOperation.CREATE,
    "Delete": AclOperation.DELETE,
    "AlterConfigs": AclOperation.ALTER_CONFIGS,
}


@pytest.fixture(scope="module")
def open_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Broker, str]]:
    """A second broker started as MSK runs during acl_bootstrap; the admin is an ordinary user."""
    if broker_from_environment() is not None or missing_tools():
        pytest.skip("needs Java and Maven to start a broker with allow.everyone.if.no.acl.found=true")
    password = secrets.token_urlsafe(18)
    options = BrokerOptions(allow_everyone_if_no_acl=True, users={ADMIN: password})
    with local_kafka(tmp_path_factory.mktemp("bootstrap"), options) as started:
        yield started, password


def admin_client(broker: Broker, password: str) -> AdminClient:
    return AdminClient(broker.client_config(ADMIN, password))


Grant = tuple[str, str, str, str]  # (resource type, name, pattern, operation), as the program writes it


def grant(broker: Broker, client: AdminClient, spec: Grant) -> None:
    """Create one admin ACL as the admin itself, and wait until the broker's authorizer holds it
    (DescribeAcls reads the same ACL cache the authorizer decides with)."""
    resource, name, pattern, operation = spec
    binding = AclBinding(
        TYPES[resource],
        name,
        PATTERNS[pattern],
        f"User:{ADMIN}",
        "*",
        OPERATIONS[operation],
        AclPermissionType.ALLOW,
    )
    for future in client.create_acls([binding], request_timeout=15).values():
        future.result()
    deadline = time.monotonic() + 15
    while str(binding) not in {str(b) for b in _all_acls(broker)}:
        assert time.monotonic() < deadline, f"{binding} never became visible"
        time.sleep(0.1)


def _all_acls(broker: Broker) -> list[AclBinding]:
    admin = broker.admin()  # keep the client alive until its future resolves
    found: list[AclBinding] = admin.describe_acls(EVERY_ACL, request_timeout=15).result()
    return found


def program_grants(domain: str) -> list[Grant]:
    """The program's admin grants, in its order, on a test domain."""
    return [ADMIN_BOOTSTRAP_GRANT] + [("Topic", domain, "Prefixed", op) for op in ADMIN_TOPIC_OPERATIONS]


def reset(broker: Broker) -> None:
    """Remove every ACL (as the broker's super user) so each test starts from a fresh cluster."""
    admin = broker.admin()
    for future in admin.delete_acls([EVERY_ACL], request_timeout=15).values():
        future.result()
    deadline = time.monotonic() + 15
    while _all_acls(broker):
        assert time.monotonic() < deadline, "ACLs did not go away"
        time.sleep(0.1)


def code_of(exc: KafkaException) -> int:
    return int(exc.args[0].code())


def test_the_program_order_survives_an_interrupted_first_run(open_broker: tuple[Broker, str]) -> None:
    broker, password = open_broker
    reset(broker)
    grants = program_grants(DOMAIN)
    grant(broker, admin_client(broker, password), grants[0])  # the run stops right after it
    resumed = admin_client(broker, password)  # a new `pulumi up`, a new connection
    for step in grants[1:]:
        grant(broker, resumed, step)
    _admin_can_manage_its_domain(resumed)


def test_describe_first_would_lock_the_admin_out(open_broker: tuple[Broker, str]) -> None:
    """What the order prevents: the cluster's first ACL is DESCRIBE, and CreateAcls needs ALTER."""
    broker, password = open_broker
    reset(broker)
    client = admin_client(broker, password)
    grant(broker, client, ("Cluster", "kafka-cluster", "Literal", "Describe"))
    with pytest.raises(KafkaException) as denied:
        grant(broker, client, ADMIN_BOOTSTRAP_GRANT)
    assert code_of(denied.value) == KafkaError.CLUSTER_AUTHORIZATION_FAILED


def _admin_can_manage_its_domain(client: AdminClient) -> None:
    """Everything the kafka provider does for topics and service ACLs, as the bootstrapped admin."""
    topic = f"{DOMAIN}t-{uuid.uuid4().hex[:6]}"
    for future in client.create_topics([NewTopic(topic, 1, 1)], request_timeout=15).values():
        future.result()
    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("retention.ms", "60000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    for future in client.incremental_alter_configs([resource], request_timeout=15).values():
        future.result()
    wait_for_topic_config(client, topic, {"retention.ms": "60000"})
    service_acl = AclBinding(
        ResourceType.TOPIC,
        topic,
        ResourcePatternType.LITERAL,
        "User:svc",
        "*",
        AclOperation.READ,
        AclPermissionType.ALLOW,
    )
    for future in client.create_acls([service_acl], request_timeout=15).values():
        future.result()
    on_topic = AclBindingFilter(
        ResourceType.TOPIC,
        topic,
        ResourcePatternType.LITERAL,
        None,
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    # Brokers learn of the ACL a moment after the controller commits it.
    found = eventually(
        lambda: [b.principal for b in client.describe_acls(on_topic, request_timeout=15).result()],
        lambda principals: principals != [],
        what=f"the grant on {topic}",
    )
    assert found == ["User:svc"]
    for future in client.delete_topics([topic], request_timeout=15).values():
        future.result()
