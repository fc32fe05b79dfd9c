"""`make local` with a Docker engine: both compose profiles start (the secure broker holds the
same users and ACLs as the Java path's), `down` and `reset` stop them all, and a topology edit
regenerates the compose file instead of failing on it. A stand-in `docker` on PATH records
what it is asked (no engine runs here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.render.compose import COMPOSE_FILE
from tests.project_files import Project

FAKE_DOCKER = """#!/bin/sh
echo "$*" >> "$DOCKER_CALLS"
exit 0
"""


@pytest.fixture
def docker_calls(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    return tmp_path / "calls.txt"


def local(project: Project, calls: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{calls.parent / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "DOCKER_CALLS": str(calls),
    }
    return subprocess.run(
        [sys.executable, "-m", "infra", "--project-dir", str(project.root), "local", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def compose_calls(calls: Path) -> list[str]:
    return [line for line in calls.read_text().splitlines() if line.startswith("compose ")]


def test_up_starts_both_profiles_and_down_and_reset_stop_them(project: Project, docker_calls: Path) -> None:
    compose_file = project.root / COMPOSE_FILE
    up = local(project, docker_calls, "up")
    assert up.returncode == 0, up.stderr
    assert "started docker-compose.kafka.yml (both profiles)" in up.stdout
    assert "aura360.local.api" in up.stdout, "the users of the secure listener are listed"
    assert local(project, docker_calls, "down").returncode == 0
    assert local(project, docker_calls, "reset").returncode == 0
    prefix = f"compose -f {compose_file} --profile secure"
    assert compose_calls(docker_calls) == [
        f"{prefix} up -d --wait",
        f"{prefix} down",
        f"{prefix} down --volumes",
    ]


def test_a_topology_edit_regenerates_the_compose_file(project: Project, docker_calls: Path) -> None:
    project.edit_topology(lambda t: t["topics"].update({"audit.log": {"partitions": 1}}))
    project.edit_topology(lambda t: t["services"]["api"]["produces"].append("audit.log"))
    up = local(project, docker_calls, "up")
    assert up.returncode == 0, up.stderr
    assert "regenerated docker-compose.kafka.yml from the topology" in up.stdout
    assert "ensure_topic aura360.audit.log 1 1" in (project.root / COMPOSE_FILE).read_text()
    assert "regenerated" not in local(project, docker_calls, "up").stdout, "only when it changed"


def test_prune_is_refused_with_compose(project: Project, docker_calls: Path) -> None:
    pruned = local(project, docker_calls, "up", "--prune")
    assert pruned.returncode == 2
    assert "--prune needs the java runtime" in pruned.stderr
    assert not docker_calls.exists() or compose_calls(docker_calls) == []
