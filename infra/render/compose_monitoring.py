"""The `monitoring` profile of docker-compose.kafka.yml: kafka_exporter on the open broker,
Prometheus with the stack's generated lag rules loaded (and redis_exporter where events go to
Redis), so the alerts can be watched firing on a laptop before they reach a cluster."""

from __future__ import annotations

from typing import Any

import yaml

from infra.plan.model import Plan
from infra.render.alert_rules import rule_groups

MONITORING_PROFILE = "monitoring"
EXPORTER_PORT = 9308  # kafka_exporter's
REDIS_EXPORTER_PORT = 9121  # redis_exporter's


def monitoring_services(plan: Plan, escape: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(services, configs) to add; ``escape`` doubles `$` for Compose's interpolation."""
    local = plan.cluster.local_settings()
    targets = [f"kafka-exporter:{EXPORTER_PORT}"]
    services: dict[str, Any] = {
        "kafka-exporter": {
            "image": local.kafka_exporter_image,
            "profiles": [MONITORING_PROFILE],
            "command": [f"--kafka.server={local.internal_bootstrap}"],
            "depends_on": {"redpanda": {"condition": "service_healthy"}},
        },
    }
    if plan.monitoring.redis_rule:
        targets.append(f"redis-exporter:{REDIS_EXPORTER_PORT}")
        services["redis-exporter"] = {
            "image": local.redis_exporter_image,
            "profiles": [MONITORING_PROFILE],
            "environment": {"REDIS_ADDR": "redis://redis:6379"},
            "depends_on": {"redis": {"condition": "service_healthy"}},
        }
    prometheus_config = {
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "rule_files": ["/etc/prometheus/kafka-platform.rules.yml"],
        "scrape_configs": [{"job_name": "kafka-platform", "static_configs": [{"targets": targets}]}],
    }
    services["prometheus"] = {
        "image": local.prometheus_image,
        "profiles": [MONITORING_PROFILE],
        "ports": [f"{local.prometheus_port}:9090"],
        "configs": [
            {"source": "prometheus-config", "target": "/etc/prometheus/prometheus.yml"},
            {"source": "prometheus-rules", "target": "/etc/prometheus/kafka-platform.rules.yml"},
        ],
        "depends_on": sorted(name for name in services),
    }
    configs = {
        "prometheus-config": {"content": escape(yaml.safe_dump(prometheus_config, sort_keys=True))},
        "prometheus-rules": {
            "content": escape(yaml.safe_dump({"groups": rule_groups(plan)}, sort_keys=True))
        },
    }
    return services, configs
