"""Two checkouts on one laptop, both on the same local ports: the second `local up` must not
report success and converge the first checkout's broker (its own JVM dies with a BindException).
It exits 1 naming the port and what holds it, with nothing created anywhere; `drift` and `lag` on
the second checkout's local stack refuse to read the first one's broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.live.kafka_broker import missing_tools
from tests.integration.test_local_without_docker import cli, free_port, local_up, on_local_ports
from tests.project_files import Project


def checkout(root: Path, domain: str, open_port: int, secure_port: int) -> Project:
    root.mkdir()
    project = Project(root).edit_topology(lambda topology: topology.update(domain=domain))
    return on_local_ports(project, open_port, secure_port)


def topics_on(project: Project) -> str:
    result = cli(project, "drift", "--stack", "local", "--format", "json")
    return result.stdout + result.stderr


def test_a_second_checkout_on_the_same_ports_changes_nothing_and_says_why(tmp_path: Path) -> None:
    if missing_tools():
        pytest.skip("needs Java and Maven")
    open_port, secure_port = free_port(), free_port()
    first = checkout(tmp_path / "first", "first", open_port, secure_port)
    second = checkout(tmp_path / "second", "second", open_port, secure_port)
    try:
        started = local_up(first)
        assert started.returncode == 0, started.stderr

        clash = local_up(second)
        assert clash.returncode == 1, clash.stdout
        assert f"port {open_port} is in use by a Kafka broker with cluster id" in clash.stderr
        assert "started Apache Kafka" not in clash.stdout
        assert not (second.root / "docker-compose.kafka.yml").exists(), "a refused up writes nothing"
        # Before the second checkout ever ran a broker, its drift and lag refuse the first one's too.
        for command in ("drift", "lag"):
            refused = cli(second, command, "--stack", "local")
            assert refused.returncode == 1, (command, refused.stdout)
            assert "no Kafka of this checkout has run" in refused.stderr, refused.stderr
        # The first checkout's broker holds its own plan and nothing of the second's.
        drift = cli(first, "drift", "--stack", "local", "--format", "json")
        assert drift.returncode == 0, drift.stdout + drift.stderr
        assert "second." not in drift.stdout

        # Once the second checkout has broker data of its own, its drift and lag know the first
        # checkout's broker is not theirs.
        cli(first, "local", "down", "--runtime", "java")
        assert local_up(second).returncode == 0
        cli(second, "local", "down", "--runtime", "java")
        assert local_up(first).returncode == 0
        for command in ("drift", "lag"):
            refused = cli(second, command, "--stack", "local")
            assert refused.returncode == 1, (command, refused.stdout)
            assert "is not this checkout's" in refused.stderr, refused.stderr
    finally:
        cli(first, "local", "reset", "--runtime", "java")
        cli(second, "local", "reset", "--runtime", "java")
