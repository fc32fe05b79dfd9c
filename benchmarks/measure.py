"""One timed measurement, run by `benchmarks.run` in a fresh interpreter.

`python -m benchmarks.measure {program|provider-floor|bare} PROJECT_DIR STACK` prints one JSON
line: ``{"seconds": ..., "resources": ...}``.

- ``program``: the real Pulumi program for STACK under mocks;
- ``provider-floor``: the plan's topics and ACLs as the same provider resource types, with
  constant inputs, no parent and no provider, built by the program's own per-resource
  functions called from a flat loop (one call deep, like the program), padded with bare
  resources to the program's count: what the provider SDK costs before any of our code;
- ``bare``: the program's count of bare resources (the floor the issue defines).

A fresh interpreter per sample keeps one run's garbage from slowing the next run's collector.
Imports happen before the clock starts.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kafka as kafka

from infra.plan.model import Plan
from infra.plan.resolve import load_plan
from infra.program import confluent
from tests.pulumi_harness import run_program, stack_settings


class BareMocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        return {}


class BareResource(pulumi.CustomResource):
    """The least a resource can be. A subclass, as every provider resource is: the SDK only
    captures a source stack trace for resources constructed through a subclass."""

    def __init__(self, name: str, value: int) -> None:
        super().__init__("bench:index:Bare", name, {"value": value})


def _timed_under_bare_mocks(program: Callable[[], None], stack: str) -> float:
    pulumi.runtime.set_mocks(BareMocks(), project="kafka-platform", stack=stack, preview=False)
    start = time.perf_counter()
    pulumi.runtime.test(program)()  # type: ignore[no-untyped-call]
    return time.perf_counter() - start


def bare(count: int, stack: str) -> float:
    def program() -> None:
        for index in range(count):
            BareResource(f"bare-{index}", index)

    return _timed_under_bare_mocks(program, stack)


def provider_floor(plan: Plan, count: int, stack: str) -> float:
    def program() -> None:
        if plan.cluster.provider == "msk":
            # What the program registered before topics and ACLs were grouped: one of each.
            for topic in plan.topics:
                kafka.Topic(
                    topic.name,
                    name=topic.name,
                    partitions=topic.partitions,
                    replication_factor=topic.replication_factor,
                    config=topic.config,
                )
            for acl in plan.acls:
                kafka.Acl(
                    acl.logical_name,
                    acl_resource_type=acl.resource_type.capitalize(),
                    acl_resource_name=acl.resource_name,
                    resource_pattern_type_filter=acl.pattern_type.capitalize(),
                    acl_operation=acl.operation.capitalize(),
                    acl_permission_type="Allow",
                    acl_principal=f"User:{acl.principal}",
                    acl_host=acl.host,
                )
        else:
            for topic in plan.topics:
                confluent.topic_resource(topic, None)
            for acl in plan.acls:
                confluent.acl_resource(acl, f"User:{acl.principal}", None)
        for index in range(count - len(plan.topics) - len(plan.acls)):
            BareResource(f"bare-{index}", index)

    return _timed_under_bare_mocks(program, stack)


def program(project: Path, stack: str) -> tuple[float, int]:
    settings = stack_settings(project, stack)
    start = time.perf_counter()
    run_program(project, stack, settings=settings, record=False)
    seconds = time.perf_counter() - start
    monitor: Any = pulumi.runtime.settings.get_monitor()  # the mocks' monitor keeps what was registered
    return seconds, len(monitor.resources)


def main(argv: list[str]) -> None:
    kind, project, stack = argv[0], Path(argv[1]), argv[2]
    if kind == "program":
        seconds, resources = program(project, stack)
    else:
        resources = int(argv[3])
        if kind == "bare":
            seconds = bare(resources, stack)
        else:
            seconds = provider_floor(load_plan(project, stack), resources, stack)
    print(json.dumps({"seconds": seconds, "resources": resources}))


if __name__ == "__main__":
    main(sys.argv[1:])
