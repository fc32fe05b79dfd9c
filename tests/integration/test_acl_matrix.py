"""The plan's ACLs proven on a real broker: every declared path works, nothing else does."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import ConfigResource, NewTopic

from infra.live.cluster_admin import EVERY_ACL, Grant
from infra.live.kafka_broker import Broker
from infra.plan.model import Plan
from tests.broker_setup import deploy_plan, planned_grants
from tests.integration.access_checks import can_consume
from tests.integration.access_matrix import run_matrix
from tests.project_files import Project


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

    admin = broker.admin()  # keep the client alive until the future resolves
    found = admin.describe_acls(EVERY_ACL, request_timeout=30).result()
    principals = {f"User:{p.name}" for p in local_plan.principals}
    ours = {Grant.from_binding(binding) for binding in found if binding.principal in principals}
    assert ours == planned_grants(local_plan)
    assert len(ours) == len(local_plan.acls)


def test_prefixed_mode_grants_exactly_the_same_paths_on_a_real_broker(broker: Broker, tmp_path: Path) -> None:
    """`acls.mode: prefixed` folds an auditor's reads of every `context.` topic into one PREFIXED
    ACL: the matrix still shows 0 over-granted, 0 missing. A topic created under that prefix
    outside topology.yaml is readable too: what validate warns about."""
    domain = f"prefixed{secrets.token_hex(2)}"

    def with_auditor(topology: dict[str, Any]) -> None:
        topology["domain"] = domain
        topology["services"]["auditor"] = {"consumes": ["context.aggregated", "context.vectorized"]}

    project = Project(tmp_path).edit_topology(with_auditor)
    project.edit_settings("local", lambda settings: settings.update(acls={"mode": "prefixed"}))
    plan = project.plan("local")
    folded = [a for a in plan.acls if a.service == "auditor" and a.pattern_type == "PREFIXED"]
    assert [(a.resource_name, a.operation) for a in folded] == [(f"{domain}.context.", "READ")]
    assert any("service 'auditor'" in warning for warning in plan.warnings)

    passwords = deploy_plan(broker, plan)
    result = run_matrix(broker, plan, passwords)
    assert not result.over_granted, [f"{a.service}: {a.path}" for a in result.over_granted]
    assert not result.missing, [f"{a.service}: {a.path}" for a in result.missing]

    stray = f"{domain}.context.created-by-hand"
    admin = broker.admin()  # alive until the future resolves
    admin.create_topics([NewTopic(stray, 1, 1)])[stray].result(timeout=30)
    producer = Producer(broker.client_config())
    producer.produce(stray, value=b"x")
    assert producer.flush(15) == 0
    auditor = plan.service("auditor")
    assert can_consume(broker, auditor.principal, passwords["auditor"], stray, str(auditor.consumer_group))
