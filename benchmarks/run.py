"""`python -m benchmarks.run`: timings for a 1,000-topic, 100-service topology.

(a) validate + plan wall time including interpreter start,
(b) prod program evaluation under Pulumi mocks (Confluent and MSK),
(c) the same number of bare resources registered under mocks (the floor), and (b)/(c),
(d) the ACL count against Confluent's per-cluster ACL limits, with prefixed compaction.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pulumi

from benchmarks.generate import write_project
from infra.acl_compaction import compact_acls
from infra.cli import load_plan

# Confluent Cloud's documented default ACL limits per cluster type.
CONFLUENT_ACL_LIMITS = {"basic": 1_000, "standard": 1_000, "enterprise": 4_000, "dedicated": 10_000}


def _cli_seconds(project: Path, *args: str, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "infra", "--project-dir", str(project), *args],
            check=True,
            capture_output=True,
        )
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


class _BareMocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        return {}


def _bare_floor_seconds(count: int) -> float:
    pulumi.runtime.set_mocks(_BareMocks(), project="kafka-platform", stack="prod", preview=False)

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> None:
        for index in range(count):
            pulumi.CustomResource("bench:index:Bare", f"bare-{index}", {"value": index})

    start = time.perf_counter()
    program()
    return time.perf_counter() - start


def _program_seconds(project: Path, stack: str, settings: dict[str, Any]) -> tuple[float, int]:
    from tests.pulumi_harness import run_program

    start = time.perf_counter()
    run_program(project, stack, settings=settings, record=False)
    seconds = time.perf_counter() - start
    monitor: Any = pulumi.runtime.settings.get_monitor()  # the mocks' monitor keeps what was registered
    return seconds, len(monitor.resources)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()

    import yaml

    with tempfile.TemporaryDirectory() as directory:
        project = write_project(Path(directory), options.topics, options.services)
        validate = _cli_seconds(project, "validate", "--stack", "prod", repeat=options.repeat)
        plan_json = _cli_seconds(
            project, "plan", "--stack", "prod", "--format", "json", repeat=options.repeat
        )
        plan = load_plan(project, "prod")

        results = {}
        for stack in ("prod", "prod-msk"):
            settings = yaml.safe_load((project / f"Pulumi.{stack}.yaml").read_text())["config"][
                "kafka-platform:settings"
            ]
            _program_seconds(project, stack, settings)  # warm imports and caches
            seconds, resources = _program_seconds(project, stack, settings)
            floor = _bare_floor_seconds(resources)
            results[stack] = (seconds, resources, floor)

    compacted = compact_acls(plan)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()}"
    )
    print(f"topology: {len(plan.topics)} topics, {len(plan.services)} services, {len(plan.acls)} ACLs")
    print(
        f"(a) validate --stack prod: {validate:.2f} s; plan --stack prod --format json: {plan_json:.2f} s "
        "(median, including interpreter start)"
    )
    for stack, (seconds, resources, floor) in results.items():
        print(f"(b) {stack}: program under mocks {seconds:.2f} s for {resources} resources")
        ratio = seconds / floor
        print(f"(c) {stack}: {resources} bare resources under mocks {floor:.2f} s; ratio (b)/(c) {ratio:.2f}")
    print(f"(d) ACLs: {len(plan.acls)} literal; {len(compacted)} with prefixed compaction")
    for tier, limit in CONFLUENT_ACL_LIMITS.items():
        print(
            f"    {tier:10} limit {limit:6}: literal {'fits' if len(plan.acls) <= limit else 'EXCEEDS'}, "
            f"compacted {'fits' if len(compacted) <= limit else 'EXCEEDS'}"
        )


if __name__ == "__main__":
    main()
