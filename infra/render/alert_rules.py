"""Prometheus alerting rules and the Grafana dashboard for a stack's consumers, from its plan.

Metric names, by `MonitoringPlan.metrics_source`:

- `kafka_exporter` (danielqsj/kafka_exporter; stacks on `kafka`, `msk` and `local`): the exporter
  most Kafka-on-Kubernetes setups already run, and the one Amazon Managed Service for Prometheus
  documents for MSK. `kafka_consumergroup_lag{consumergroup,topic,partition}` (-1 where the group
  never committed: left out), `kafka_consumergroup_members{consumergroup}`,
  `kafka_topic_partition_current_offset{topic,partition}`.
- `confluent` (Confluent Cloud's Metrics API export): `confluent_kafka_server_consumer_lag_offsets
  {kafka_id,topic,consumer_group_id}`. The export has no group-member count and no record age, so
  on Confluent only the lag-in-messages rule is generated.

The time lag is estimated as unconsumed messages divided by the topic's production rate over the
threshold's own window: while producers write steadily that is the age of the oldest unconsumed
record; with no production in the window and messages still unconsumed the estimate is infinite,
and the oldest of them is indeed older than the window.
"""

from __future__ import annotations

import json
from typing import Any

from infra.model.durations import format_retention
from infra.model.names import PLATFORM_MIRROR
from infra.plan.model import ConsumerWatch, Plan

SEVERITY = "warning"
# A migrating stack's source cluster has a kafka_exporter of its own; its scrape target carries
# this label (docs/migration.md), so the mirror's rule tells the two clusters' topics apart.
MIRROR_SOURCE_LABEL = "kafka_platform_cluster"
MIRROR_SOURCE_VALUE = "source"
MIRROR_WINDOW_SECONDS = 300
REDIS_EXPORTER_UP = "redis_up"  # oliver006/redis_exporter
REDIS_DOWN = "Redis is unreachable: events routed to redis or both are not delivered"


def _duration(seconds: int) -> str:
    return format_retention(seconds * 1000)


def _labels(plan: Plan, watch: ConsumerWatch, **extra: str) -> dict[str, str]:
    return {
        "severity": SEVERITY,
        "stack": plan.stack,
        "service": watch.service,
        "consumer_group": watch.group + ("*" if watch.group_is_prefix else ""),
        "topic": watch.topic,
        **extra,
    }


def _group_regex(watch: ConsumerWatch) -> str:
    """The group's regular expression inside a PromQL double-quoted string, where a backslash
    starts an escape sequence: the regex's own backslashes are doubled."""
    return watch.group_pattern.replace("\\", "\\\\")


def _exporter_lag(watch: ConsumerWatch) -> str:
    selector = f'consumergroup=~"{_group_regex(watch)}",topic="{watch.topic}"'
    return f"sum by (topic) (kafka_consumergroup_lag{{{selector}}} >= 0)"


def _confluent_lag(watch: ConsumerWatch) -> str:
    selector = f'consumer_group_id=~"{_group_regex(watch)}",topic="{watch.topic}"'
    return f"sum by (topic) (confluent_kafka_server_consumer_lag_offsets{{{selector}}})"


def service_rules(plan: Plan, service: str) -> list[dict[str, Any]]:
    """The alerting rules of one service's watched consumers."""
    confluent = plan.monitoring.metrics_source == "confluent"
    rules: list[dict[str, Any]] = []
    groups_seen: set[str] = set()
    for watch in (w for w in plan.consumers if w.service == service):
        lag = _confluent_lag(watch) if confluent else _exporter_lag(watch)
        wait = _duration(watch.for_seconds)
        if watch.lag_messages is not None:
            rules.append(
                {
                    "alert": "KafkaConsumerLagMessages",
                    "expr": f"{lag} > {watch.lag_messages}",
                    "for": wait,
                    "labels": _labels(plan, watch, threshold=str(watch.lag_messages)),
                    "annotations": {
                        "summary": f"{service} is {{{{ $value }}}} messages behind on {watch.topic} "
                        f"(group {watch.group}; threshold {watch.lag_messages})",
                    },
                }
            )
        if watch.lag_seconds is not None and not confluent:
            window = _duration(max(watch.lag_seconds, 60))
            offsets = f'kafka_topic_partition_current_offset{{topic="{watch.topic}"}}'
            produced = f"sum by (topic) (rate({offsets}[{window}]))"
            rules.append(
                {
                    "alert": "KafkaConsumerLagSeconds",
                    "expr": f"({lag} / {produced}) > {watch.lag_seconds}",
                    "for": wait,
                    "labels": _labels(plan, watch, threshold=_duration(watch.lag_seconds)),
                    "annotations": {
                        "summary": f"{service}'s oldest unconsumed message on {watch.topic} is about "
                        f"{{{{ $value | humanizeDuration }}}} old (threshold {_duration(watch.lag_seconds)})",
                    },
                }
            )
        if not confluent and watch.group not in groups_seen:
            groups_seen.add(watch.group)
            members = f'sum(kafka_consumergroup_members{{consumergroup=~"{_group_regex(watch)}"}})'
            rules.append(
                {
                    "alert": "KafkaConsumerGroupEmpty",
                    "expr": f"({members} or vector(0)) == 0",
                    "for": wait,
                    "labels": _labels(plan, watch),
                    "annotations": {"summary": f"no member of {service}'s group {watch.group} is consuming"},
                }
            )
    return rules


def mirrored_only_topics(plan: Plan) -> list[str]:
    """The topics whose every producer is still on a migration's source: on the target they grow
    only through MirrorMaker 2, so a source that grows while the target does not is a stalled mirror."""
    migration = plan.migration
    if migration is None:
        return []
    producers: dict[str, list[str]] = {}
    for service in plan.services:
        for topic in service.produces:
            producers.setdefault(topic, []).append(service.name)
    return sorted(
        topic
        for topic in migration.topics
        if producers.get(topic)
        and all(migration.service_sides[name] == "source" for name in producers[topic])
    )


def mirror_rules(plan: Plan) -> list[dict[str, Any]]:
    """A migrating stack's mirror: records arrive on the source and none reach the target."""
    if plan.monitoring.metrics_source != "kafka_exporter":
        return []
    window = _duration(MIRROR_WINDOW_SECONDS)
    rules = []
    for topic in mirrored_only_topics(plan):
        source = f'{MIRROR_SOURCE_LABEL}="{MIRROR_SOURCE_VALUE}",topic="{topic}"'
        target = f'{MIRROR_SOURCE_LABEL}!="{MIRROR_SOURCE_VALUE}",topic="{topic}"'
        produced = f"sum by (topic) (rate(kafka_topic_partition_current_offset{{{source}}}[{window}])) > 0"
        copied = f"sum by (topic) (rate(kafka_topic_partition_current_offset{{{target}}}[{window}])) > 0"
        rules.append(
            {
                "alert": "KafkaMirrorStalled",
                "expr": f"({produced}) unless on (topic) ({copied})",
                "for": window,
                "labels": {"severity": SEVERITY, "stack": plan.stack, "topic": topic},
                "annotations": {
                    "summary": f"records arrive on {topic} on the migration's source and none reach "
                    "the target: MirrorMaker 2 is not copying "
                    f"(kafka-platform migration status --stack {plan.stack})",
                },
            }
        )
    return rules


def rule_groups(plan: Plan) -> list[dict[str, Any]]:
    """One rule group per watched service, the mirror's on a migrating stack, and the Redis one
    where events go to Redis."""
    groups = [
        {"name": f"kafka-platform.{plan.stack}.{service}", "rules": service_rules(plan, service)}
        for service in sorted({watch.service for watch in plan.consumers})
    ]
    # Named after the reserved service name, so no service's group (or PrometheusRule) has it.
    if mirrored := mirror_rules(plan):
        groups.append({"name": f"kafka-platform.{plan.stack}.{PLATFORM_MIRROR}", "rules": mirrored})
    if plan.monitoring.redis_rule:
        groups.append(
            {
                "name": f"kafka-platform.{plan.stack}.redis",
                "rules": [
                    {
                        "alert": "RedisDown",
                        "expr": f"{REDIS_EXPORTER_UP} == 0",
                        "for": "1m",
                        "labels": {"severity": "critical", "stack": plan.stack},
                        "annotations": {"summary": REDIS_DOWN},
                    }
                ],
            }
        )
    return groups


def dashboard(plan: Plan) -> dict[str, Any]:
    """A Grafana dashboard: one row per watched service, a lag panel per topic it consumes."""
    confluent = plan.monitoring.metrics_source == "confluent"
    panels: list[dict[str, Any]] = []
    y = 0
    for service in sorted({watch.service for watch in plan.consumers}):
        panels.append({"type": "row", "title": service, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
        y += 1
        watches = [w for w in plan.consumers if w.service == service]
        width = max(24 // len(watches), 6)
        for index, watch in enumerate(watches):
            panels.append(
                {
                    "type": "timeseries",
                    "title": f"{watch.topic}: messages behind",
                    "gridPos": {"h": 8, "w": width, "x": (index * width) % 24, "y": y},
                    "targets": [
                        {"expr": _confluent_lag(watch) if confluent else _exporter_lag(watch), "refId": "A"}
                    ],
                    "fieldConfig": {
                        "defaults": {
                            "thresholds": {
                                "mode": "absolute",
                                "steps": [
                                    {"color": "green", "value": None},
                                    {"color": "red", "value": watch.lag_messages},
                                ],
                            }
                        }
                    },
                }
            )
        y += 8 * -(-len(watches) * width // 24)
    return {
        "title": f"Kafka consumers: {plan.domain} {plan.stack}",
        "uid": f"kafka-platform-{plan.stack}"[:40],
        "schemaVersion": 39,
        "tags": ["kafka-platform", plan.stack],
        "panels": panels,
    }


def dashboard_json(plan: Plan) -> str:
    return json.dumps(dashboard(plan), indent=2, sort_keys=True) + "\n"
