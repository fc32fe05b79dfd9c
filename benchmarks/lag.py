"""`lag` at scale: the generated 1,000-topic / 100-service topology on the test broker, every
group with committed offsets and a tenth of the partitions behind, read as `infra lag` reads it.

    python -m benchmarks.lag [--topics 1000] [--services 100]

Needs Java with Maven (or KAFKA_BOOTSTRAP_SERVERS).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml
from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition

from benchmarks.engine import _broker, _topology
from benchmarks.generate import write_project
from infra.live.consumer_lag import read_lag
from infra.live.lag_report import judge
from infra.plan.resolve import load_plan
from tests.broker_setup import deploy_plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--services", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        project = write_project(work / "project", args.topics, args.services)
        (project / "topology.yaml").write_text(
            yaml.safe_dump(_topology(args.topics, args.services), sort_keys=False)
        )
        plan = load_plan(project, "local")
        with _broker(work) as broker:
            admin = broker.admin()
            deploy_plan(broker, plan)
            producer = Producer(broker.client_config())
            for topic in plan.topics:
                for index in range(3):
                    producer.produce(topic.name, f"record-{index}".encode(), key=b"k")
            producer.flush(60)
            del producer  # before the broker stops
            # Every group commits: all caught up, but every tenth topic one record behind.
            behind = {topic.name for index, topic in enumerate(plan.topics) if index % 10 == 0}
            for watch in {w.group: w for w in plan.consumers}.values():
                topics = [w.topic for w in plan.consumers if w.group == watch.group]
                offsets = [TopicPartition(t, 0, 2 if t in behind else 3) for t in topics]
                request = [ConsumerGroupTopicPartitions(watch.group, offsets)]
                admin.alter_consumer_group_offsets(request)[watch.group].result()
            timings = []
            for _ in range(3):
                start = time.perf_counter()
                findings = judge(read_lag(broker, plan.consumers), now_ms=int(time.time() * 1000))
                timings.append(time.perf_counter() - start)
            lagging = sum(1 for f in findings if f.messages)
            print(
                f"lag: {len(plan.consumers)} (service, group, topic) of {len(plan.topics)} topics, "
                f"{len({w.group for w in plan.consumers})} groups, {lagging} behind: "
                f"read and judged in {min(timings):.2f}-{max(timings):.2f} s"
            )


if __name__ == "__main__":
    main()
