"""The plan's ACLs proven on a real broker: every declared path works, nothing else does."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from confluent_kafka import Producer
from confluent_kafka.admin import ConfigResource

from infra.kafka_broker import Broker
from infra.plan import Plan, ServicePlan
from tests.integration import access_checks as check


@dataclass(frozen=True)
class Attempt:
    service: str
    path: str
    expected: bool
    run: Callable[[], bool]


def _attempts(broker: Broker, plan: Plan, service: ServicePlan, password: str) -> list[Attempt]:
    """Every declared path of ``service`` plus the undeclared ones a mistake would open."""
    creds = (broker, service.principal, password)
    own_group = service.consumer_group or f"{plan.domain}.{service.name}"
    attempts: list[Attempt] = []

    def attempt(path: str, expected: bool, action: Callable[..., bool], *args: str) -> None:
        attempts.append(Attempt(service.name, path, expected, partial(action, *creds, *args)))

    idempotent = service.env.get("KAFKA_ENABLE_IDEMPOTENCE") == "true"
    for topic in plan.topics:
        producing = topic.name in service.produces
        attempt(f"produce {topic.name}", producing, check.can_produce, topic.name)
        if idempotent and producing:
            # No IDEMPOTENT_WRITE grant: Kafka >= 2.8 only wants WRITE on the topic (KIP-679).
            attempts.append(
                Attempt(
                    service.name,
                    f"idempotent produce {topic.name}",
                    True,
                    partial(check.can_produce, *creds, topic.name, idempotent=True),
                )
            )
        attempt(
            f"consume {topic.name} as {own_group}",
            topic.name in service.consumes,
            check.can_consume,
            topic.name,
            own_group,
        )
    foreign = next(s for s in plan.services if s.consumer_group and s.name != service.name)
    readable = service.consumes[0] if service.consumes else plan.topics[0].name
    attempt(
        f"join group {foreign.consumer_group} of {foreign.name}",
        False,
        check.can_consume,
        readable,
        str(foreign.consumer_group),
    )
    attempt("create a topic", False, check.can_create_topic, f"{plan.name_prefix}{plan.domain}.")
    target = (service.produces or service.consumes)[0]
    attempt(f"alter config of {target}", False, check.can_alter_config, target)
    # Each instance's id is the service's prefix plus its own suffix (here "matrix-0").
    prefixes = {s.transactional_id_prefix for s in plan.services if s.transactional_id_prefix}
    prefixes.add(service.transactional_id_prefix or f"{plan.name_prefix}{plan.domain}.{service.name}.")
    for prefix in sorted(prefixes):
        attempt(
            f"transactional id {prefix}matrix-0",
            prefix == service.transactional_id_prefix,
            check.can_use_transactional_id,
            f"{prefix}matrix-0",
        )
    if service.transactional_id_prefix:
        bare = service.transactional_id_prefix.rstrip(".")
        attempt(f"transactional id {bare} (outside the prefix)", False, check.can_use_transactional_id, bare)
    return attempts


def _seed_every_topic(broker: Broker, plan: Plan) -> None:
    producer = Producer(broker.client_config())
    for topic in plan.topics:
        producer.produce(topic.name, key=b"seed", value=b"seed")
    assert producer.flush(30) == 0


def test_every_declared_path_works_and_nothing_else(
    broker: Broker, local_plan: Plan, applied: dict[str, str], integration_report: list[str]
) -> None:
    _seed_every_topic(broker, local_plan)

    def run_service(service: ServicePlan) -> list[tuple[Attempt, bool]]:
        attempts = _attempts(broker, local_plan, service, applied[service.name])
        return [(attempt, attempt.run()) for attempt in attempts]

    with ThreadPoolExecutor(max_workers=len(local_plan.services)) as pool:
        results = [row for rows in pool.map(run_service, local_plan.services) for row in rows]

    over_granted = [a for a, allowed in results if allowed and not a.expected]
    missing = [a for a, allowed in results if a.expected and not allowed]
    integration_report.append(f"broker: {broker.description}")
    for service in local_plan.services:
        rows = [(a, allowed) for a, allowed in results if a.service == service.name]
        allowed_count = sum(allowed for _, allowed in rows)
        over = sum(a in over_granted for a, _ in rows)
        lacking = sum(a in missing for a, _ in rows)
        integration_report.append(
            f"{service.name:20} {allowed_count:2} allowed  {len(rows) - allowed_count:2} denied  "
            f"over-granted {over}  missing {lacking}"
        )
        for attempt, allowed in rows:
            mark = "ok " if allowed == attempt.expected else "BAD"
            integration_report.append(f"    {mark} {'allow' if allowed else 'deny '}  {attempt.path}")
    integration_report.append(
        f"total: {len(results)} paths, {len(over_granted)} over-granted, {len(missing)} missing"
    )
    assert not over_granted, [f"{a.service}: {a.path}" for a in over_granted]
    assert not missing, [f"{a.service}: {a.path}" for a in missing]
    assert sum(a.expected for a, _ in results) >= 2 * len(local_plan.services), "the matrix tested real paths"


def test_topic_configs_on_the_broker_equal_the_plan(
    broker: Broker, local_plan: Plan, applied: dict[str, str]
) -> None:
    admin = broker.admin()
    metadata = admin.list_topics(timeout=10).topics
    resources = [ConfigResource(ConfigResource.Type.TOPIC, topic.name) for topic in local_plan.topics]
    described = {
        resource.name: future.result() for resource, future in admin.describe_configs(resources).items()
    }
    for topic in local_plan.topics:
        assert len(metadata[topic.name].partitions) == topic.partitions
        for key, value in topic.config.items():
            assert described[topic.name][key].value == value, (topic.name, key)


def test_acls_on_the_broker_are_exactly_the_plan(
    broker: Broker, local_plan: Plan, applied: dict[str, str]
) -> None:
    from confluent_kafka.admin import (
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    from infra.apply_plan import acl_bindings

    every = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
    )
    admin = broker.admin()  # keep the client alive until the future resolves
    found = admin.describe_acls(every, request_timeout=30).result()
    principals = {f"User:{p.name}" for p in local_plan.principals}
    ours = {str(binding) for binding in found if binding.principal in principals}
    assert ours == {str(binding) for binding in acl_bindings(local_plan)}
    assert len(ours) == len(local_plan.acls)
