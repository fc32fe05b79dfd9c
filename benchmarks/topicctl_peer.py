"""The topicctl peer: the same topics applied by segmentio's topicctl (built from its Go module by
`make topicctl`), the way its users run it: one YAML file per topic, `topicctl apply`.

topicctl manages topics only (its ACL support is separate and its SCRAM users are not managed),
so it is compared on the topics of the benchmark topology, not on the whole estate.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from infra.live.kafka_broker import Broker
from infra.plan.model import Plan

CLUSTER = {"name": "bench", "environment": "bench", "region": "local"}
TOPIC_META = {"cluster": "bench", "environment": "bench", "region": "local"}


def topicctl_binary() -> Path | None:
    found = Path(sys.prefix) / "bin" / "topicctl"  # .venv/bin, where `make topicctl` links it
    return found if found.exists() else None


def write_configs(root: Path, broker: Broker, plan: Plan, topics: int) -> list[Path]:
    """cluster.yaml and topics/<name>.yaml, topicctl's layout, for the plan's first ``topics``."""
    cluster: dict[str, Any] = {
        "meta": {**CLUSTER, "description": "the engine benchmark's broker"},
        "spec": {"bootstrapAddrs": broker.bootstrap.split(",")},
    }
    if broker.security_protocol.startswith("SASL"):
        cluster["spec"]["sasl"] = {
            "enabled": True,
            "mechanism": broker.sasl_mechanism,
            "username": broker.admin_user,
            "password": broker.admin_password,
        }
    (root / "topics").mkdir(parents=True, exist_ok=True)
    (root / "cluster.yaml").write_text(yaml.safe_dump(cluster))
    paths = []
    for topic in plan.topics[:topics]:
        settings = {key: value for key, value in topic.config.items() if key != "retention.ms"}
        spec: dict[str, Any] = {
            "partitions": topic.partitions,
            "replicationFactor": topic.replication_factor,
            "placement": {"strategy": "any"},
            "settings": settings,
        }
        if "retention.ms" in topic.config:
            spec["retentionMinutes"] = int(topic.config["retention.ms"]) // 60_000
        path = root / "topics" / f"{topic.name}.yaml"
        path.write_text(yaml.safe_dump({"meta": {**TOPIC_META, "name": topic.name}, "spec": spec}))
        paths.append(path)
    return paths


def apply_seconds(binary: Path, paths: list[Path], *extra: str) -> float:
    start = time.perf_counter()
    applied = subprocess.run(
        [str(binary), "apply", "--skip-confirm", *extra, *map(str, paths)],
        check=False,
        capture_output=True,
        text=True,
    )
    if applied.returncode != 0:
        raise RuntimeError(f"topicctl apply failed: {applied.stderr[-2000:]}")
    return time.perf_counter() - start
