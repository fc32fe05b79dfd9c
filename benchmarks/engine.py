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
from benchmarks.topicctl_peer import apply_seconds, topicctl_binary, write_configs
from infra.live.cluster_admin import EVERY_ACL, delete_grants
from infra.live.kafka_broker import Broker, broker_from_environment, local_kafka
from infra.plan.model import Plan
from infra.plan.resolve import load_plan
from tests.broker_setup import deploy_plan, planned_grants
from tests.e2e.engine import EngineProject, existing_cluster_settings, missing_binaries

STACK = "bench"


@dataclass(frozen=True)
class EngineTiming:
    parallel: int
    resources: int
    up: float
    one_topic: float  # `up` of a retention change of one topic
    one_service: float  # `up` of one more topic consumed by one service (its grants)
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


def _one_topic(topology: dict[str, Any]) -> None:
    first = next(iter(topology["topics"]))
    topology["topics"][first]["retention"] = "3d"


def _one_service(topology: dict[str, Any]) -> None:
    first, consumer = next(iter(topology["topics"])), next(iter(topology["services"].values()))
    consumer["consumes"].append(first)


def engine_timing(project: EngineProject, parallel: int) -> EngineTiming:
    original = (project.root / "topology.yaml").read_text()
    stack = project.stack(STACK, existing_cluster_settings(project.broker))
    up_seconds = _seconds(lambda: stack.up(parallel=parallel))
    resources = len((stack.export_stack().deployment or {}).get("resources", []))
    project.edit_topology(_one_topic)
    one_topic = _seconds(lambda: stack.up(parallel=parallel))
    project.edit_topology(_one_service)
    one_service = _seconds(lambda: stack.up(parallel=parallel))
    preview = _seconds(lambda: stack.preview(parallel=parallel, expect_no_changes=True))
    refresh = _seconds(lambda: stack.preview(parallel=parallel, expect_no_changes=True, refresh=True))
    destroy = _seconds(lambda: stack.destroy(parallel=parallel))
    (project.root / "topology.yaml").write_text(original)
    return EngineTiming(parallel, resources, up_seconds, one_topic, one_service, preview, refresh, destroy)


def floor_timing(broker: Broker, plan: Plan) -> FloorTiming:
    admin = broker.admin()
    apply_seconds = _seconds(lambda: deploy_plan(broker, plan))

    def read() -> None:
        admin.list_topics(timeout=60)
        resources = [ConfigResource(ConfigResource.Type.TOPIC, topic.name) for topic in plan.topics]
        for future in admin.describe_configs(resources, request_timeout=60).values():
            future.result()
        admin.describe_acls(EVERY_ACL, request_timeout=60).result()

    def delete() -> None:
        delete_grants(admin, planned_grants(plan))
        for future in admin.delete_topics(
            [topic.name for topic in plan.topics], request_timeout=120
        ).values():
            future.result()

    return FloorTiming(apply_seconds, _seconds(read), _seconds(delete))


def topicctl_timing(project: EngineProject, plan: Plan, sample: int) -> None:
    """topicctl on the same topics: as its users run it on ``sample`` topics, then on all of them
    with its sleep between creates cut to nothing (its fastest). Each run's topics are deleted."""
    binary = topicctl_binary()
    if binary is None:
        print("topicctl: not built (`make topicctl`, needs Go): no peer numbers")
        return
    admin = project.broker.admin()

    def delete(paths: list[Path]) -> None:
        names = [path.stem for path in paths]
        for future in admin.delete_topics(names, request_timeout=120).values():
            future.result()
        while set(names) & set(admin.list_topics(timeout=30).topics):
            time.sleep(0.5)

    root = project.root.parent / "topicctl"
    paths = write_configs(root, project.broker, plan, len(plan.topics))
    default = apply_seconds(binary, paths[:sample])
    delete(paths[:sample])
    fastest = apply_seconds(binary, paths, "--sleep-loop-duration", "5ms")
    delete(paths)
    print(
        f"topicctl apply: {sample} topics {default:.1f} s ({default / sample:.2f} s per topic, "
        f"{default / sample * len(paths):.0f} s for {len(paths)} at that rate) with its default "
        f"--sleep-loop-duration 10s; all {len(paths)} topics {fastest:.1f} s with --sleep-loop-duration 5ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--parallel", type=int, nargs="+", default=[64])
    parser.add_argument(
        "--topicctl-sample", type=int, default=50, help="topics topicctl applies with its default pacing"
    )
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
        topicctl_timing(project, plan, options.topicctl_sample)
        for parallel in options.parallel:
            timing = engine_timing(project, parallel)
            refresh = timing.refresh_preview
            label = " (PULUMI_SKIP_CHECKPOINTS)" if options.skip_checkpoints else ""
            print(
                f"engine --parallel {parallel}{label}: {timing.resources} resources; up {timing.up:.1f} s "
                f"({timing.up / floor.apply:.1f}x the floor), one topic changed {timing.one_topic:.1f} s, "
                f"one service's grants changed {timing.one_service:.1f} s, preview {timing.preview:.1f} s, "
                f"preview --refresh {refresh:.1f} s ({refresh / floor.read:.1f}x), "
                f"destroy {timing.destroy:.1f} s ({timing.destroy / floor.delete:.1f}x)"
            )


if __name__ == "__main__":
    main()
