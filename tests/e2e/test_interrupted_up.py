"""A `pulumi up` killed midway (SIGKILL to the CLI and its plugins, checkpoints on, as when a CI
runner dies) re-runs cleanly after the documented recovery: nothing lost and nothing made twice.
What the killed run created but never recorded is not taken over silently (an empty topic that
matches the plan may be another stack's): `kafka-platform import` lists it for `adopt`."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections import Counter
from pathlib import Path

import pytest
import yaml
from pulumi import automation as auto

from benchmarks.generate import large_topology
from infra.live.kafka_broker import Broker
from infra.plan.resolve import load_plan
from tests.e2e.broker_state import assert_broker_holds, snapshot
from tests.e2e.engine import PARALLEL, EngineProject, existing_cluster_settings, state_resources
from tests.e2e.test_life_cycle import passwords
from tests.eventually import eventually
from tests.integration.access_checks import can_produce

STACK = "e2e"


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(parent, []).append(int(entry.name))
    return tree


def kill_the_cli() -> int:
    """SIGKILL every `pulumi` process this test started, and everything under it (the plugins)."""
    tree = _children()
    clis = [
        pid for pid in tree.get(os.getpid(), []) if Path(f"/proc/{pid}/comm").read_text().strip() == "pulumi"
    ]
    doomed, queue = [], list(clis)
    while queue:
        pid = queue.pop()
        doomed.append(pid)
        queue += tree.get(pid, [])
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(clis)


def test_a_killed_up_re_runs_cleanly(engine_project: EngineProject, broker: Broker) -> None:
    project = engine_project
    topology = large_topology(topics=300, services=30)
    topology["domain"] = "killed"
    for spec in topology["topics"].values():
        spec["partitions"] = 1
    (project.root / "topology.yaml").write_text(yaml.safe_dump(topology, sort_keys=False))
    stack = project.stack(STACK, existing_cluster_settings(broker))
    plan = load_plan(project.root, STACK)

    failure: list[BaseException] = []

    def up() -> None:
        try:
            stack.up(parallel=PARALLEL)
        except auto.CommandError as error:
            failure.append(error)

    running = threading.Thread(target=up)
    running.start()
    # Kill as soon as the cluster holds some of the plan, and before it holds all of it.
    partial = eventually(
        lambda: len(snapshot(broker).topics_under("killed.")),
        lambda count: count > 0,
        what="the first topics of the interrupted up",
        timeout=120,
    )
    assert kill_the_cli() == 1
    running.join(timeout=60)
    assert failure, "the up was killed"
    assert 0 < partial < len(plan.topics)
    assert state_resources(stack), "checkpoints were written before the kill"

    # The documented recovery (docs/deploying.md, "An interrupted up"): a file (or S3...) backend
    # keeps the dead run's lock, `pulumi cancel` removes it; the creates it left pending are
    # dropped; `kafka-platform import` lists what exists for `adopt`; then `up` converges.
    with pytest.raises(auto.ConcurrentUpdateError):
        stack.up(parallel=PARALLEL)
    project.cli("cancel", "--yes", "--stack", STACK)
    stack.refresh(clear_pending_creates=True, parallel=PARALLEL)
    settings = existing_cluster_settings(broker)
    project.write_settings(STACK, {**settings, "adopt": project.import_adopt_list(STACK)})
    stack.up(parallel=PARALLEL)
    project.write_settings(STACK, settings)  # adopt has done its job
    assert_broker_holds(broker, plan)
    resources = Counter(r["urn"] for r in state_resources(stack))
    assert max(resources.values()) == 1, "every resource once"
    assert not (stack.export_stack().deployment or {}).get("pending_operations")
    credentials = passwords(stack)
    producer = plan.services[0]
    assert can_produce(broker, producer.principal, credentials[producer.name], producer.produces[0])
    stack.preview(expect_no_changes=True)
    stack.destroy(parallel=PARALLEL)
    assert not snapshot(broker).topics_under("killed.")
