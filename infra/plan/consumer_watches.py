"""Which (service, consumer group, topic) triples a stack watches for lag, and with which
thresholds: pure, from the topology and the resolved services.

Per field, the first that is set wins: the service's `monitoring`, the topic's, the topology's
defaults. A service with `monitoring: {enabled: false}` is not watched.
"""

from __future__ import annotations

from infra.model.settings import StackSettings
from infra.model.topology import MonitoringOverride, Topology
from infra.plan.model import ConsumerWatch, MonitoringPlan, ServicePlan

CONNECT_GROUP_PREFIX = "connect-"  # Kafka Connect names a sink connector's group connect-<connector>


def consumer_watches(
    topology: Topology, services: list[ServicePlan], topic_keys: dict[str, str]
) -> list[ConsumerWatch]:
    """``topic_keys``: planned topic name -> its key in the topology."""
    watches = []
    for service in services:
        spec = topology.services[service.name]
        if not service.consumes or (spec.monitoring is not None and not spec.monitoring.enabled):
            continue
        group, is_prefix = _group(service, spec.kind)
        for topic in service.consumes:
            key = topic_keys[topic]
            layers = [spec.monitoring, topology.all_topics[key].monitoring]
            defaults = topology.monitoring
            watches.append(
                ConsumerWatch(
                    service=service.name,
                    group=group,
                    group_is_prefix=is_prefix,
                    topic=topic,
                    lag_messages=_first([o.lag.messages for o in layers if o], defaults.lag.messages),
                    lag_seconds=_first([o.lag.seconds for o in layers if o], defaults.lag.seconds),
                    for_seconds=_first([o.for_ for o in _present(layers)], defaults.for_) or defaults.for_,
                )
            )
    return sorted(watches, key=lambda w: (w.service, w.topic))


def _present(layers: list[MonitoringOverride | None]) -> list[MonitoringOverride]:
    return [layer for layer in layers if layer is not None]


def _first(values: list[int | None], default: int | None) -> int | None:
    return next((value for value in values if value is not None), default)


def _group(service: ServicePlan, kind: str) -> tuple[str, bool]:
    """The group that reads the service's topics: a Connect worker's sink connectors each have
    their own group under `connect-<prefix>`; per-instance groups share a prefix."""
    if kind == "connect":
        return f"{CONNECT_GROUP_PREFIX}{service.env['KAFKA_CONNECT_CONNECTOR_PREFIX']}", True
    if service.consumer_group_prefix is not None:
        return service.consumer_group_prefix, True
    assert service.consumer_group is not None, f"{service.name} consumes without a group"
    return service.consumer_group, False


def monitoring_plan(settings: StackSettings, routes_to_redis: bool) -> MonitoringPlan:
    monitoring = settings.monitoring
    return MonitoringPlan(
        metrics_source="confluent" if settings.kafka.provider == "confluent" else "kafka_exporter",
        prometheus_rules=monitoring.prometheus.rules,
        rule_labels=dict(sorted(monitoring.prometheus.rule_labels.items())),
        grafana_dashboard=monitoring.prometheus.dashboard,
        cloudwatch_alarms=monitoring.cloudwatch.alarms,
        sns_topic_arn=monitoring.cloudwatch.sns_topic_arn,
        redis_rule=routes_to_redis,
    )
