"""`python -m benchmarks.run`: timings for a 1,000-topic, 100-service topology.

(a) validate + plan wall time including interpreter start,
(b) prod program evaluation under Pulumi mocks (Confluent and MSK),
(c) the same number of bare resources registered under mocks (the floor), and (b)/(c),
    plus the provider floor: the plan's topics and ACLs registered as the same provider
    resource types from a flat loop, which separates the provider SDK's cost from ours,
(d) per `acls.mode`, the ACLs and role bindings of the prod plan, and which Confluent cluster
    types take them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.generate import write_project
from infra.model.settings import CONFLUENT_ACL_LIMITS, RBAC_TIERS
from infra.plan.model import Plan
from infra.plan.resolve import load_plan

MODES = ("literal", "prefixed", "rbac")


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


def _measure(kind: str, project: Path, stack: str, *extra: str) -> tuple[float, int]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.measure", kind, str(project), stack, *extra],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(done.stdout.splitlines()[-1])
    return float(result["seconds"]), int(result["resources"])


def _median_seconds(repeat: int, kind: str, project: Path, stack: str, *extra: str) -> tuple[float, int]:
    samples = [_measure(kind, project, stack, *extra) for _ in range(repeat)]
    return statistics.median(seconds for seconds, _ in samples), samples[0][1]


@dataclass(frozen=True)
class ProgramTiming:
    program: float
    resources: int
    provider_floor: float
    bare_floor: float


def _program_timing(project: Path, stack: str, repeat: int) -> ProgramTiming:
    seconds, resources = _median_seconds(repeat, "program", project, stack)
    provider, _ = _median_seconds(repeat, "provider-floor", project, stack, str(resources))
    bare, _ = _median_seconds(repeat, "bare", project, stack, str(resources))
    return ProgramTiming(seconds, resources, provider, bare)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        project = write_project(Path(directory), options.topics, options.services)
        validate = _cli_seconds(project, "validate", "--stack", "prod", repeat=options.repeat)
        plan_json = _cli_seconds(
            project, "plan", "--stack", "prod", "--format", "json", repeat=options.repeat
        )
        plan = load_plan(project, "prod")
        timings = {stack: _program_timing(project, stack, options.repeat) for stack in ("prod", "prod-msk")}

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()}"
    )
    print(f"topology: {len(plan.topics)} topics, {len(plan.services)} services, {len(plan.acls)} ACLs")
    print(
        f"(a) validate --stack prod: {validate:.2f} s; plan --stack prod --format json: {plan_json:.2f} s "
        "(median, including interpreter start)"
    )
    for stack, timing in timings.items():
        print(f"(b) {stack}: program under mocks {timing.program:.2f} s for {timing.resources} resources")
        print(
            f"(c) {stack}: {timing.resources} bare resources {timing.bare_floor:.2f} s, "
            f"ratio (b)/(c) {timing.program / timing.bare_floor:.2f}; provider floor "
            f"{timing.provider_floor:.2f} s, ratio (b)/provider floor "
            f"{timing.program / timing.provider_floor:.2f}"
        )
    with tempfile.TemporaryDirectory() as directory:
        plans = {mode: _mode_plan(Path(directory) / mode, options, mode) for mode in MODES}
    print(
        "(d) per acls.mode: "
        + "; ".join(
            f"{mode} {len(p.acls)} ACLs, {len(p.role_bindings)} role bindings" for mode, p in plans.items()
        )
    )
    for tier, limit in CONFLUENT_ACL_LIMITS.items():
        verdicts = [f"{mode} {_fits(plans[mode], tier, limit)}" for mode in MODES]
        print(f"    {tier:10} ACL limit {limit:6,}: {', '.join(verdicts)}")


def _mode_plan(directory: Path, options: argparse.Namespace, mode: str) -> Plan:
    """The prod plan in ``mode``, counted without the cluster's limit (raised out of the way)."""
    acls = {"mode": mode, "limit": 1_000_000}
    return load_plan(write_project(directory, options.topics, options.services, acls), "prod")


def _fits(plan: Plan, tier: str, limit: int) -> str:
    if plan.access_mode == "rbac":
        return "fits" if tier in RBAC_TIERS else "not offered"
    return "fits" if len(plan.acls) <= limit else "EXCEEDS"


if __name__ == "__main__":
    main()
