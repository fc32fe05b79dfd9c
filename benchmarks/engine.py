"""The real engine at scale: the generated 1,000-topic / 100-service topology as a `provider: kafka`
stack on the test broker, against the floor of the same work done directly with the AdminClient.

    python -m benchmarks.engine [--topics 1000] [--services 100] [--parallel 8 64]

Needs `make engine` (Go) and Java with Maven (or KAFKA_BOOTSTRAP_SERVERS).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka.admin import (
    ConfigResource,
)

from benchmarks.generate import large_topology
from infra.apply_plan import EVERY_ACL, acl_bindings, apply_plan, matching
from infra.kafka_broker import Broker, broker_from_environment, local_kafka
from infra.plan import load_plan
from infra.plan_model import Plan
from tests.e2e.engine import EngineProject, existing_cluster_settings, missing_binaries

STACK = "bench"


@dataclass(frozen=True)
class EngineTiming:
    parallel: int
    resources: int
    up: float
    preview: float
    refresh_preview: float
    destroy: float


@dataclass(frozen=True)
class FloorTiming:
    apply: float  # one batch of topics, one of ACLs, the SCRAM upserts
    read: float  # what a refresh reads back: topic metadata and configs, every ACL
    delete: float


def _seconds(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


@contextmanager
def _broker(work: Path) -> Iterator[Broker]:
    external = broker_from_environment()
    if external is not None:
        yield external
        return
    with local_kafka(work / "kafka") as started:
        yield started


def _topology(topics: int, services: int) -> dict[str, Any]:
    topology = large_topology(topics, services)
    for spec in topology["topics"].values():
        spec["partitions"] = 1  # one broker: measure the platform's work, not partition placement
    return topology


def engine_timing(project: EngineProject, parallel: int) -> EngineTiming:
    stack = project.stack(STACK, existing_cluster_settings(project.broker))
    up_seconds = _seconds(lambda: stack.up(parallel=parallel))
    resources = len((stack.export_stack().deployment or {}).get("resources", []))
    preview = _seconds(lambda: stack.preview(parallel=parallel, expect_no_changes=True))
    refresh = _seconds(lambda: stack.preview(parallel=parallel, expect_no_changes=True, refresh=True))
    destroy = _seconds(lambda: stack.destroy(parallel=parallel))
    return EngineTiming(parallel, resources, up_seconds, preview, refresh, destroy)


def floor_timing(broker: Broker, plan: Plan) -> FloorTiming:
    admin = broker.admin()
    apply_seconds = _seconds(lambda: apply_plan(admin, plan, broker.sasl_mechanism))

    def read() -> None:
        admin.list_topics(timeout=60)
        resources = [ConfigResource(ConfigResource.Type.TOPIC, topic.name) for topic in plan.topics]
        for future in admin.describe_configs(resources, request_timeout=60).values():
            future.result()
        admin.describe_acls(EVERY_ACL, request_timeout=60).result()

    def delete() -> None:
        for future in admin.delete_acls([matching(b) for b in acl_bindings(plan)]).values():
            future.result()
        for future in admin.delete_topics(
            [topic.name for topic in plan.topics], request_timeout=120
        ).values():
            future.result()

    return FloorTiming(apply_seconds, _seconds(read), _seconds(delete))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--parallel", type=int, nargs="+", default=[64])
    parser.add_argument(
        "--skip-checkpoints",
        action="store_true",
        help="PULUMI_SKIP_CHECKPOINTS: no state write per step (the file backend's cost), final state only",
    )
    options = parser.parse_args()
    if missing_binaries():
        raise SystemExit(f"the real engine is not built ({', '.join(missing_binaries())}): run `make engine`")

    with tempfile.TemporaryDirectory() as directory, _broker(Path(directory)) as broker:
        extra_env = {"PULUMI_SKIP_CHECKPOINTS": "true"} if options.skip_checkpoints else {}
        project = EngineProject(Path(directory) / "project", broker, extra_env=extra_env)
        (project.root / "topology.yaml").write_text(
            yaml.safe_dump(_topology(options.topics, options.services), sort_keys=False)
        )
        project.stack(STACK, existing_cluster_settings(broker))  # writes the settings and the admin secret
        plan = load_plan(project.root, STACK)
        print(f"topology: {len(plan.topics)} topics, {len(plan.services)} services, {len(plan.acls)} ACLs")
        floor = floor_timing(broker, plan)
        print(
            f"floor (AdminClient): apply {floor.apply:.1f} s, read back {floor.read:.1f} s, "
            f"delete {floor.delete:.1f} s"
        )
        for parallel in options.parallel:
            timing = engine_timing(project, parallel)
            refresh = timing.refresh_preview
            label = " (PULUMI_SKIP_CHECKPOINTS)" if options.skip_checkpoints else ""
            print(
                f"engine --parallel {parallel}{label}: {timing.resources} resources; up {timing.up:.1f} s "
                f"({timing.up / floor.apply:.1f}x the floor), preview {timing.preview:.1f} s, "
                f"preview --refresh {refresh:.1f} s ({refresh / floor.read:.1f}x), "
                f"destroy {timing.destroy:.1f} s ({timing.destroy / floor.delete:.1f}x)"
            )


if __name__ == "__main__":
    main()
