"""docker-compose.kafka.yml mirrors the local stack's plan, and its init scripts are idempotent."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.cli import load_plan
from infra.compose import render_compose, unescape_compose
from tests.project_files import Project

FAKE_RPK = """#!/usr/bin/env bash
# Records calls and keeps just enough state to behave like rpk for the init scripts.
state="$FAKE_RPK_STATE"
echo "$*" >> "$state/calls"
case "$1 $2" in
  "topic describe") [ -f "$state/topic-$3" ] ;;
  "topic create") [ ! -f "$state/topic-$3" ] && touch "$state/topic-$3" ;;
  "topic alter-config") [ -f "$state/topic-$3" ] ;;
  "security user")
    if [ "$3" = create ]; then [ ! -f "$state/user-$4" ] && touch "$state/user-$4"
    else [ -f "$state/user-$4" ]; fi ;;
  "security acl") echo "$*" >> "$state/acls" ;;
  *) echo "unexpected rpk call: $*" >&2; exit 3 ;;
esac
"""


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def compose_document(text: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(text)
    return document


def script_of(document: dict[str, Any], service: str) -> str:
    return unescape_compose(document["services"][service]["command"][0])


def test_committed_compose_file_is_up_to_date(repo_dir: Path) -> None:
    result = run_cli("compose", "--check", cwd=repo_dir)
    assert result.returncode == 0, result.stdout + result.stderr


def test_stale_compose_file_fails_the_check_with_a_diff(project: Project, repo_dir: Path) -> None:
    for name in ("docker-compose.kafka.yml", ".env.example"):
        (project.root / name).write_text((repo_dir / name).read_text())
    project.edit_topology(lambda t: t["topics"]["user.events"].update(partitions=9))
    result = run_cli("compose", "--check", cwd=project.root)
    assert result.returncode == 1
    removed = [line for line in result.stdout.splitlines() if line.startswith("-")]
    added = [line for line in result.stdout.splitlines() if line.startswith("+")]
    assert any("ensure_topic aura360.user.events 6 1" in line for line in removed)
    assert any("ensure_topic aura360.user.events 9 1" in line for line in added)
    assert run_cli("compose", cwd=project.root).returncode == 0
    assert run_cli("compose", "--check", cwd=project.root).returncode == 0


def test_compose_follows_topology_changes(project: Project) -> None:
    before = render_compose(project.plan("local"))

    def grow(topology: dict[str, Any]) -> None:
        topology["topics"]["audit.log"] = {
            "partitions": 2,
            "cleanup": "compact",
            "config": {"max.message.bytes": 2048},
        }
        topology["services"]["auditor"] = {"consumes": ["audit.log"]}
        topology["services"]["api"]["produces"].append("audit.log")

    project.edit_topology(grow)
    after = render_compose(project.plan("local"))
    assert before != after
    document = compose_document(after)
    topics = script_of(document, "topics-init")
    assert "ensure_topic aura360.audit.log 2 1 cleanup.policy=compact max.message.bytes=2048" in topics
    secure = script_of(document, "acl-init")
    assert 'ensure_user aura360-auditor-local "$LOCAL_KAFKA_PASSWORD_AUDITOR"' in secure
    assert "--allow-principal User:aura360-auditor-local --operation read --topic aura360.audit.log" in secure
    assert "--allow-principal User:aura360-auditor-local --operation read --group aura360.auditor" in secure
    assert "--allow-principal User:aura360-api-local --operation write --topic aura360.audit.log" in secure
    assert "LOCAL_KAFKA_PASSWORD_AUDITOR" in document["services"]["acl-init"]["environment"]


def test_compose_has_the_documented_listeners_console_and_profile(repo_dir: Path) -> None:
    document = compose_document((repo_dir / "docker-compose.kafka.yml").read_text())
    services = document["services"]
    broker = services["redpanda"]
    assert "--mode=dev-container" in broker["command"]
    assert "--advertise-kafka-addr=internal://redpanda:9092,external://localhost:19092" in broker["command"]
    assert broker["ports"] == ["19092:19092"]
    assert broker["volumes"] == ["redpanda-data:/var/lib/redpanda/data"]
    assert "healthcheck" in broker
    assert services["console"]["environment"] == {"KAFKA_BROKERS": "redpanda:9092"}
    assert services["topics-init"]["depends_on"] == {"redpanda": {"condition": "service_healthy"}}
    assert services["acl-init"]["profiles"] == services["redpanda-secure"]["profiles"] == ["secure"]
    assert "enable_sasl: true" in document["configs"]["redpanda-secure-bootstrap"]["content"]


def test_every_acl_of_the_plan_is_in_the_secure_profile(repo_dir: Path) -> None:
    plan = load_plan(repo_dir, "local")
    secure = script_of(compose_document(render_compose(plan)), "acl-init")
    acl_lines = [line for line in secure.splitlines() if line.startswith("rpk security acl create")]
    assert len(acl_lines) == len(plan.acls)


def test_local_passwords_are_marked_and_overridable(repo_dir: Path) -> None:
    text = (repo_dir / "docker-compose.kafka.yml").read_text()
    assert "LOCAL-DEV-ONLY" in text
    environment = compose_document(text)["services"]["acl-init"]["environment"]
    for key, value in environment.items():
        if key.startswith("LOCAL_KAFKA_PASSWORD_"):
            assert value.startswith(f"${{{key}:-local-dev-only-")


def test_render_is_byte_identical(repo_dir: Path) -> None:
    assert render_compose(load_plan(repo_dir, "local")) == render_compose(load_plan(repo_dir, "local"))


def test_compose_refuses_a_cloud_stack(repo_dir: Path) -> None:
    result = run_cli("compose", "--stack", "prod", "--check", cwd=repo_dir)
    assert result.returncode == 2
    assert "mirrors a local stack" in result.stderr


@pytest.fixture
def fake_rpk(tmp_path: Path) -> dict[str, str]:
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    rpk = bin_dir / "rpk"
    rpk.write_text(FAKE_RPK)
    rpk.chmod(rpk.stat().st_mode | stat.S_IEXEC)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_RPK_STATE": str(state)}


@pytest.mark.parametrize("service", ["topics-init", "acl-init"])
def test_init_scripts_are_idempotent(repo_dir: Path, fake_rpk: dict[str, str], service: str) -> None:
    document = compose_document((repo_dir / "docker-compose.kafka.yml").read_text())
    script = script_of(document, service)
    env = {**fake_rpk, **{k: "pw" for k in document["services"][service]["environment"]}}
    for attempt in (1, 2):
        result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"run {attempt}: {result.stderr}"
    calls = (Path(fake_rpk["FAKE_RPK_STATE"]) / "calls").read_text().splitlines()
    assert sum(call.startswith("topic create") for call in calls) == 6, "created once, not twice"
    assert any(
        call.startswith("topic alter-config aura360.user.events --set retention.ms=") for call in calls
    )
