"""The plan's ACLs proven on a real broker: every declared path works, nothing else does."""

from __future__ import annotations

from confluent_kafka.admin import ConfigResource

from infra.apply_plan import EVERY_ACL
from infra.kafka_broker import Broker
from infra.plan import Plan
from tests.integration.access_matrix import run_matrix


def test_every_declared_path_works_and_nothing_else(
    broker: Broker, local_plan: Plan, applied: dict[str, str], integration_report: list[str]
) -> None:
    result = run_matrix(broker, local_plan, applied)
    integration_report.append(f"broker: {broker.description}")
    integration_report.extend(result.report(local_plan))
    assert not result.over_granted, [f"{a.service}: {a.path}" for a in result.over_granted]
    assert not result.missing, [f"{a.service}: {a.path}" for a in result.missing]
    declared = sum(a.expected for a, _ in result.rows)
    assert declared >= 2 * len(local_plan.services), "the matrix tested real paths"


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

    from infra.apply_plan import acl_bindings

    admin = broker.admin()  # keep the client alive until the future resolves
    found = admin.describe_acls(EVERY_ACL, request_timeout=30).result()
    principals = {f"User:{p.name}" for p in local_plan.principals}
    ours = {str(binding) for binding in found if binding.principal in principals}
    assert ours == {str(binding) for binding in acl_bindings(local_plan)}
    assert len(ours) == len(local_plan.acls)
