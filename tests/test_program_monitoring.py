"""Lag alerting as the program registers it, under Pulumi's mocks: PrometheusRules and the
Grafana dashboard on Kubernetes stacks, the Confluent metrics reader and its scrape job, and the
CloudWatch alarms of an MSK stack, with the metric names and dimensions the providers document."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from infra.model.stacks import SETTINGS_KEY
from tests.project_files import REPO
from tests.pulumi_harness import is_secret_on_the_wire, reveal, run_program

PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SECRET = "kubernetes:core/v1:Secret"  # pragma: allowlist secret - a type token
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
SNS_TOPIC = "aws:sns/topic:Topic"
ROLE_BINDING = "confluentcloud:index/roleBinding:RoleBinding"
API_KEY = "confluentcloud:index/apiKey:ApiKey"  # pragma: allowlist secret - a type token


def settings_of(example_dir: Path, stack_file: str, monitoring: dict[str, Any]) -> dict[str, Any]:
    document = yaml.safe_load((example_dir / stack_file).read_text())
    settings: dict[str, Any] = copy.deepcopy(document["config"][SETTINGS_KEY])
    settings["monitoring"] = monitoring
    return settings


def test_off_by_default(example_dir: Path) -> None:
    run = run_program(example_dir, "dev")
    assert not run.of_type(PROMETHEUS_RULE) and not run.of_type(ALARM)


def test_confluent_stack_rules_dashboard_and_a_cluster_scoped_metrics_reader(example_dir: Path) -> None:
    monitoring = {"prometheus": {"rules": True, "dashboard": True, "rule_labels": {"release": "prom"}}}
    run = run_program(example_dir, "dev", settings=settings_of(example_dir, "Pulumi.dev.yaml", monitoring))
    rules = {r.name: r.inputs for r in run.of_type(PROMETHEUS_RULE)}
    consumers = {s.name for s in run.plan.services if s.consumes}
    assert set(rules) == {f"{service}-kafka-lag" for service in consumers}
    api = rules["api-kafka-lag"]
    assert api["metadata"]["namespace"] == "aura360-dev"
    assert api["metadata"]["labels"]["release"] == "prom"
    (rule,) = api["spec"]["groups"][0]["rules"]
    assert rule["expr"] == (
        'sum by (topic) (confluent_kafka_server_consumer_lag_offsets{consumer_group_id=~"aura360\\\\.api",'
        'topic="aura360.guardian.responses"}) > 1000'
    )
    dashboard = run.one(CONFIG_MAP, "kafka-platform-dev-dashboard").inputs
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    panels = json.loads(dashboard["data"]["kafka-platform-dev.json"])["panels"]
    assert [p["title"] for p in panels if p["type"] == "row"] == sorted(consumers)

    binding = next(r for r in run.of_type(ROLE_BINDING) if r.name == "metrics-viewer-binding")
    assert binding.inputs["roleName"] == "MetricsViewer"
    assert binding.inputs["crnPattern"].endswith("/cloud-cluster=lkc-mock"), "this cluster only"
    key = run.one(API_KEY, "metrics-viewer-key").inputs
    assert "managedResource" not in key, "a Cloud API key: what the Metrics API takes"
    scrape = run.one(SECRET, "kafka-platform-confluent-scrape")
    assert is_secret_on_the_wire(scrape.wire["stringData"]), "it holds the key's secret"
    (job,) = yaml.safe_load(reveal(scrape.wire["stringData"])["confluent-cloud.yaml"])
    assert job["metrics_path"] == "/v2/metrics/cloud/export"
    assert job["params"] == {"resource.kafka.id": ["lkc-mock"]}
    assert job["basic_auth"] == {
        "username": "KEYMETRICS-VIEWER-KEY",
        "password": "mock-api-secret-of-metrics-viewer-key",  # pragma: allowlist secret - the mocks' value
    }


def test_msk_alarms_per_consumer_on_msks_own_metrics_and_dimensions(example_dir: Path) -> None:
    monitoring = {"cloudwatch": {"alarms": True}}
    settings = settings_of(REPO, "examples/Pulumi.prod-msk.yaml", monitoring)
    run = run_program(example_dir, "prod-msk", settings=settings)
    (topic,) = run.of_type(SNS_TOPIC)
    alarms = run.of_type(ALARM)
    watched = {(w.service, w.topic) for w in run.plan.consumers}
    assert len(alarms) == 2 * len(watched), "SumOffsetLag and EstimatedMaxTimeLag per consumer"
    api_lag = next(a.inputs for a in alarms if a.name == "api-SumOffsetLag-aura360.guardian.responses")
    assert api_lag["namespace"] == "AWS/Kafka"
    assert api_lag["metricName"] == "SumOffsetLag"
    assert api_lag["threshold"] == 1000 and api_lag["evaluationPeriods"] == 5 and api_lag["period"] == 60
    assert set(api_lag["dimensions"]) == {"Consumer Group", "Cluster Name", "Topic"}
    assert api_lag["dimensions"]["Consumer Group"] == "aura360.api"
    assert api_lag["dimensions"]["Topic"] == "aura360.guardian.responses"
    assert len(api_lag["alarmActions"]) == 1 and topic.name == "kafka-lag-alerts"
    age = next(a.inputs for a in alarms if a.name == "api-EstimatedMaxTimeLag-aura360.guardian.responses")
    assert (age["metricName"], age["threshold"]) == ("EstimatedMaxTimeLag", 300)


def test_msk_alarms_notify_a_named_sns_topic(example_dir: Path) -> None:
    arn = "arn:aws:sns:eu-west-1:123456789012:oncall"
    monitoring = {"cloudwatch": {"alarms": True, "sns_topic_arn": arn}}
    run = run_program(
        example_dir,
        "prod-msk",
        settings=settings_of(REPO, "examples/Pulumi.prod-msk.yaml", monitoring),
    )
    assert not run.of_type(SNS_TOPIC)
    assert {tuple(a.inputs["alarmActions"]) for a in run.of_type(ALARM)} == {(arn,)}
