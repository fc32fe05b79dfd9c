"""The README's quick start, run as written: after `make local` (here `local up` on free ports),
its produce/consume snippet and its publish step (the client) work with nothing but the env
`kafka-platform env` prints."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from infra.live.kafka_broker import missing_tools
from tests.project_files import REPO, Project


def quick_start_snippet() -> str:
    readme = (REPO / "README.md").read_text()
    blocks: list[str] = re.findall(r"```bash\n(.*?)```", readme, flags=re.DOTALL)
    return next(block for block in blocks if "kafka-platform env --stack local" in block)


def publish_snippet() -> str:
    readme = (REPO / "README.md").read_text()
    blocks: list[str] = re.findall(r"```bash\n(.*?)```", readme, flags=re.DOTALL)
    return next(block for block in blocks if "publish_event" in block)


def run_snippet(script: str, project: Project) -> list[str]:
    """A README bash block run as a newcomer pastes it, in ``project``; its output lines."""
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()


def test_the_quick_start_producer_uses_the_platforms_partitioner() -> None:
    """librdkafka's default partitioner puts a key on another partition than the Java clients
    and the platform's client do: the snippet a team copies must not teach it."""
    producer_line = next(line for line in quick_start_snippet().splitlines() if "Producer(" in line)
    assert '"partitioner": os.environ["KAFKA_PARTITIONER"]' in producer_line


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def running_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    if missing_tools():
        pytest.skip("needs Java and Maven")
    project = Project(tmp_path_factory.mktemp("quick-start"))
    ports = {"external_bootstrap": free_port(), "secure_external_bootstrap": free_port()}
    project.edit_settings(
        "local", lambda s: s["kafka"]["local"].update({k: f"localhost:{p}" for k, p in ports.items()})
    )
    (project.root / ".venv").symlink_to(REPO / ".venv")
    local = [sys.executable, "-m", "infra", "--project-dir", str(project.root), "local"]
    started = subprocess.run([*local, "up", "--runtime", "java"], capture_output=True, text=True, check=False)
    assert started.returncode == 0, started.stderr
    yield project
    subprocess.run([*local, "reset", "--runtime", "java"], capture_output=True, check=False)


def test_the_quick_start_snippet_produces_and_consumes_as_api_and_publishes_with_the_client(
    running_local: Project,
) -> None:
    """The produce/consume snippet, then the "publish from a service" step in the same shell."""
    lines = run_snippet(quick_start_snippet() + publish_snippet(), running_local)
    assert lines[-3:] == [
        "produced to aura360.user.events",
        "consumer: authorized, no record yet",
        "('kafka',)",
    ], lines
