"""Lag alerts and dashboards, rendered from the plan's consumer watches (`infra/render/alert_rules.py`).

- Kubernetes stacks with `monitoring.prometheus.rules`: one prometheus-operator `PrometheusRule`
  per watched service; with `dashboard`, a ConfigMap labelled `grafana_dashboard: "1"`, the label
  the Grafana chart's dashboard sidecar watches by default.
- Confluent Cloud stacks with rules: a service account bound to `MetricsViewer` on the cluster
  only, its Cloud API key, and a Secret holding the Prometheus scrape job for the Metrics API's
  export endpoint (`additionalScrapeConfigs` takes it as is).
- MSK stacks with `monitoring.cloudwatch.alarms`: per watched consumer, CloudWatch alarms on the
  lag metrics MSK publishes per consumer group and topic (namespace `AWS/Kafka`, metrics
  `SumOffsetLag` and `EstimatedMaxTimeLag`, dimensions `Consumer Group`, `Cluster Name`, `Topic`:
  the MSK developer guide, "Monitor consumer lags"), notifying an SNS topic.
"""

from __future__ import annotations

import math

import pulumi
import pulumi_aws as aws
import pulumi_confluentcloud as confluent
import pulumi_kubernetes as k8s
import yaml

from infra.plan.model import ConsumerWatch, Plan
from infra.program.kubernetes_env import MANAGED_BY
from infra.render.alert_rules import dashboard_json, rule_groups

PROMETHEUS_RULE_API = "monitoring.coreos.com/v1"
GRAFANA_DASHBOARD_LABEL = {"grafana_dashboard": "1"}
CONFLUENT_EXPORT_HOST = "api.telemetry.confluent.cloud"
CONFLUENT_EXPORT_PATH = "/v2/metrics/cloud/export"
CLOUDWATCH_PERIOD_S = 60
SCRAPE_SECRET = "kafka-platform-confluent-scrape"  # pragma: allowlist secret - a Secret object's name
SCRAPE_KEY = "confluent-cloud.yaml"


def prometheus_monitoring(
    plan: Plan, namespace: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> list[pulumi.Resource]:
    resources: list[pulumi.Resource] = []
    labels = {**MANAGED_BY, **plan.monitoring.rule_labels}
    if plan.monitoring.prometheus_rules:
        for group in rule_groups(plan):
            name = group["name"].rsplit(".", 1)[1] + "-kafka-lag"
            resources.append(
                k8s.apiextensions.CustomResource(
                    name,
                    api_version=PROMETHEUS_RULE_API,
                    kind="PrometheusRule",
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels=labels),
                    spec={"groups": [group]},
                    opts=opts,
                )
            )
    if plan.monitoring.grafana_dashboard:
        name = f"kafka-platform-{plan.stack}-dashboard"
        resources.append(
            k8s.core.v1.ConfigMap(
                name,
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=name, namespace=namespace, labels={**MANAGED_BY, **GRAFANA_DASHBOARD_LABEL}
                ),
                data={f"kafka-platform-{plan.stack}.json": dashboard_json(plan)},
                opts=opts,
            )
        )
    return resources


def confluent_scrape_job(
    plan: Plan,
    cluster_id: pulumi.Output[str],
    cluster_crn: pulumi.Output[str],
    namespace: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> k8s.core.v1.Secret:
    """A metrics reader for this cluster only, and the scrape job that uses its key."""
    reader = confluent.ServiceAccount(
        "metrics-viewer",
        display_name=f"{plan.domain}-{plan.environment}-metrics-viewer",
        description="Reads this cluster's metrics for Prometheus (kafka-platform).",
        opts=opts,
    )
    binding = confluent.RoleBinding(
        "metrics-viewer-binding",
        principal=reader.id.apply(lambda sa_id: f"User:{sa_id}"),
        role_name="MetricsViewer",
        crn_pattern=cluster_crn,
        opts=opts,
    )
    # No managed_resource: a Cloud API key, which the Metrics API takes.
    key = confluent.ApiKey(
        "metrics-viewer-key",
        display_name=f"{plan.domain}-{plan.environment}-metrics-viewer",
        description="Prometheus scrape of the Confluent Metrics API export (kafka-platform)",
        owner=confluent.ApiKeyOwnerArgs(id=reader.id, api_version="iam/v2", kind="ServiceAccount"),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[binding])),
    )
    job: pulumi.Output[str] = pulumi.Output.all(cluster_id, key.id, key.secret).apply(
        lambda values: yaml.safe_dump(
            [
                {
                    "job_name": f"confluent-cloud-{plan.stack}",
                    "scheme": "https",
                    "metrics_path": CONFLUENT_EXPORT_PATH,
                    "params": {"resource.kafka.id": [values[0]]},
                    "static_configs": [{"targets": [CONFLUENT_EXPORT_HOST]}],
                    "basic_auth": {"username": values[1], "password": values[2]},
                    "scrape_interval": "1m",
                    "scrape_timeout": "1m",
                    "honor_timestamps": True,
                }
            ],
            sort_keys=True,
        )
    )
    return k8s.core.v1.Secret(
        SCRAPE_SECRET,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=SCRAPE_SECRET, namespace=namespace, labels=MANAGED_BY),
        type="Opaque",
        string_data={SCRAPE_KEY: job},  # a secret already: it holds the key's secret
        opts=opts,
    )


def cloudwatch_lag_alarms(
    plan: Plan, cluster_name: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> list[aws.cloudwatch.MetricAlarm]:
    """Two alarms per watched consumer with an exact group (CloudWatch dimensions take no prefix)."""
    if plan.monitoring.sns_topic_arn is not None:
        actions: list[pulumi.Input[str]] = [plan.monitoring.sns_topic_arn]
    else:
        topic = aws.sns.Topic(
            "kafka-lag-alerts", name=f"{plan.domain}-{plan.environment}-kafka-lag", opts=opts
        )
        actions = [topic.arn]
    alarms = []
    for watch in plan.consumers:
        if watch.group_is_prefix:
            continue
        periods = max(math.ceil(watch.for_seconds / CLOUDWATCH_PERIOD_S), 1)
        for metric, threshold, unit in (
            ("SumOffsetLag", watch.lag_messages, "messages"),
            ("EstimatedMaxTimeLag", watch.lag_seconds, "seconds"),
        ):
            if threshold is None:
                continue
            alarms.append(
                aws.cloudwatch.MetricAlarm(
                    f"{watch.service}-{metric}-{watch.topic}",
                    alarm_description=f"{watch.service} ({watch.group}) over {threshold} {unit} behind on "
                    f"{watch.topic}",
                    namespace="AWS/Kafka",
                    metric_name=metric,
                    dimensions=_dimensions(watch, cluster_name),
                    statistic="Maximum",
                    period=CLOUDWATCH_PERIOD_S,
                    evaluation_periods=periods,
                    threshold=threshold,
                    comparison_operator="GreaterThanThreshold",
                    # MSK emits lag only for STABLE or EMPTY groups: no data is not an alarm.
                    treat_missing_data="notBreaching",
                    alarm_actions=actions,
                    ok_actions=actions,
                    opts=opts,
                )
            )
    return alarms


def _dimensions(watch: ConsumerWatch, cluster_name: pulumi.Input[str]) -> dict[str, pulumi.Input[str]]:
    return {"Consumer Group": watch.group, "Cluster Name": cluster_name, "Topic": watch.topic}
