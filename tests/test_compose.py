"""docker-compose.kafka.yml mirrors the local stack's plan, and its init scripts are idempotent."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.plan.resolve import load_plan
from infra.render.compose import render_compose, unescape_compose
from tests.project_files import Project
from tests.test_event_schemas import MOOD, with_schema
from tests.test_event_schemas import record as event_record

FAKE_RPK = Path(__file__).with_name("fake_rpk.py")


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def compose_document(text: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(text)
    return document


def script_of(document: dict[str, Any], service: str) -> str:
    return unescape_compose(document["services"][service]["command"][0])


def test_committed_compose_file_is_up_to_date(example_dir: Path) -> None:
    result = run_cli("compose", "--check", cwd=example_dir)
    assert result.returncode == 0, result.stdout + result.stderr


def test_stale_compose_file_fails_the_check_with_a_diff(project: Project, example_dir: Path) -> None:
    for name in ("docker-compose.kafka.yml", ".env.example"):
        (project.root / name).write_text((example_dir / name).read_text())
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
    assert 'ensure_user aura360.local.auditor "$LOCAL_KAFKA_PASSWORD_AUDITOR"' in secure
    assert "--allow-principal User:aura360.local.auditor --operation read --topic aura360.audit.log" in secure
    assert "--allow-principal User:aura360.local.auditor --operation read --group aura360.auditor" in secure
    assert "--allow-principal User:aura360.local.api --operation write --topic aura360.audit.log" in secure
    assert "LOCAL_KAFKA_PASSWORD_AUDITOR" in document["services"]["acl-init"]["environment"]


def test_compose_has_the_documented_listeners_console_and_profile(example_dir: Path) -> None:
    document = compose_document((example_dir / "docker-compose.kafka.yml").read_text())
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


def test_every_acl_of_the_plan_is_in_the_secure_profile(example_dir: Path) -> None:
    plan = load_plan(example_dir, "local")
    secure = script_of(compose_document(render_compose(plan)), "acl-init")
    acl_lines = [line for line in secure.splitlines() if line.startswith("rpk security acl create")]
    assert len(acl_lines) == len(plan.acls)


def test_local_passwords_are_marked_and_overridable(example_dir: Path) -> None:
    text = (example_dir / "docker-compose.kafka.yml").read_text()
    assert "LOCAL-DEV-ONLY" in text
    environment = compose_document(text)["services"]["acl-init"]["environment"]
    for key, value in environment.items():
        if key.startswith("LOCAL_KAFKA_PASSWORD_"):
            assert value.startswith(f"${{{key}:-local-dev-only-")


def test_render_is_byte_identical(example_dir: Path) -> None:
    assert render_compose(load_plan(example_dir, "local")) == render_compose(load_plan(example_dir, "local"))


def test_compose_refuses_a_cloud_stack(example_dir: Path) -> None:
    result = run_cli("compose", "--stack", "prod", "--check", cwd=example_dir)
    assert result.returncode == 2
    assert "mirrors a local stack" in result.stderr


def compose_environment(environment: dict[str, str]) -> dict[str, str]:
    """A service's environment as Compose interpolates it with no .env file: the defaults."""
    return {key: re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value) for key, value in environment.items()}


@pytest.fixture
def fake_rpk(tmp_path: Path) -> dict[str, str]:
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    rpk = bin_dir / "rpk"
    rpk.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_RPK}" "$@"\n')
    rpk.chmod(rpk.stat().st_mode | stat.S_IEXEC)
    path = f"{bin_dir}:{os.environ['PATH']}"
    return {"PATH": path, "HOME": str(tmp_path), "FAKE_RPK_STATE": str(state)}


def run_init_script(document: dict[str, Any], service: str, fake_rpk: dict[str, str]) -> dict[str, Any]:
    """Run a service's init script twice (the second `up`) and return what rpk was left with."""
    env = {**fake_rpk, **compose_environment(document["services"][service]["environment"])}
    for attempt in (1, 2):
        result = subprocess.run(
            ["bash", "-c", script_of(document, service)], env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"run {attempt}: {result.stderr}"
    state: dict[str, Any] = json.loads((Path(fake_rpk["FAKE_RPK_STATE"]) / "state.json").read_text())
    return state


@pytest.mark.parametrize("service", ["topics-init", "acl-init"])
def test_init_scripts_leave_the_plans_topics_and_no_auto_creation(
    example_dir: Path, fake_rpk: dict[str, str], service: str
) -> None:
    plan = load_plan(example_dir, "local")
    document = compose_document((example_dir / "docker-compose.kafka.yml").read_text())
    state = run_init_script(document, service, fake_rpk)
    assert state["topics"] == {
        t.name: {"partitions": t.partitions, "replicas": t.replication_factor, "config": t.config}
        for t in plan.topics
    }
    # Like the cloud clusters: a typo'd topic name fails locally instead of creating a topic.
    assert state["cluster_config"] == {"auto_create_topics_enabled": "false"}
    calls = (Path(fake_rpk["FAKE_RPK_STATE"]) / "calls").read_text().splitlines()
    assert sum(call.startswith("topic create") for call in calls) == len(plan.topics), "created once"
    assert any(
        call.startswith("topic alter-config aura360.user.events --set retention.ms=") for call in calls
    ), "the second run updates configs of existing topics"


def test_secure_init_creates_exactly_the_plans_users_and_acls(
    example_dir: Path, fake_rpk: dict[str, str]
) -> None:
    plan = load_plan(example_dir, "local")
    document = compose_document((example_dir / "docker-compose.kafka.yml").read_text())
    state = run_init_script(document, "acl-init", fake_rpk)
    assert state["users"] == {s.principal: "SCRAM-SHA-256" for s in plan.services}
    kinds = {"TOPIC": "topic", "GROUP": "group", "TRANSACTIONAL_ID": "transactional-id", "CLUSTER": "cluster"}
    expected = sorted(
        [
            f"User:{a.principal}",
            kinds[a.resource_type],
            a.resource_name,
            a.pattern_type.lower(),
            a.operation.replace("_", "").lower(),
        ]
        for a in plan.acls
    )
    assert sorted(state["acls"]) == expected


def test_fake_rpk_rejects_what_rpk_would(fake_rpk: dict[str, str]) -> None:
    """The stand-in is strict, so the script tests above can fail."""

    def rpk(*args: str, **env: str) -> int:
        return subprocess.run(
            ["rpk", *args], env={**fake_rpk, **env}, capture_output=True, check=False
        ).returncode

    broker = {"RPK_BROKERS": "redpanda:9092"}
    acl_create = ("security", "acl", "create", "--allow-principal", "User:u")
    assert rpk("topic", "create", "t", "-p", "3", "-r", "1", **broker) == 0
    assert rpk("topic", "create", "t2", "-p", "3", "-r", "2", **broker) != 0  # even replicas
    assert rpk("topic", "create", "t3", "-p", "3") != 0  # no RPK_BROKERS: rpk would dial localhost
    assert rpk("security", "user", "create", "u", "-p", "pw", **broker) != 0  # no RPK_ADMIN_HOSTS
    assert rpk(*acl_create, "--operation", "read", "--topic", "t", **broker) == 0
    assert rpk(*acl_create, "--operation", "readwrite", "--topic", "t", **broker) != 0
    assert rpk(*acl_create, "--operation", "read", "--topics", "t", **broker) != 0
    level = ("registry", "compatibility-level", "set", "s-value")
    assert rpk(*level, "--level", "BACKWARD", **broker) != 0  # no RPK_REGISTRY_HOSTS
    assert rpk(*level, "--level", "BACKWARDS", RPK_REGISTRY_HOSTS="redpanda:8081") != 0
    assert rpk("registry", "schema", "create", "s-value", "--schema", "/nonexistent.avsc") != 0


def test_a_topology_with_schemas_exposes_redpandas_registry_and_registers_its_subjects(
    project: Project, fake_rpk: dict[str, str]
) -> None:
    """Redpanda's built-in registry on the stack's port; topics-init gives each subject its
    level, then its schema (twice over: the second `up` adds no version)."""
    plan = with_schema(project, event_record(MOOD, name="MoodCreated")).plan("local")
    (subject,) = plan.subjects
    document = compose_document(render_compose(plan))
    redpanda = document["services"]["redpanda"]
    assert "--schema-registry-addr=internal://0.0.0.0:8081,external://0.0.0.0:18081" in redpanda["command"]
    assert "18081:18081" in redpanda["ports"]
    assert plan.schema_registry is not None
    assert (plan.schema_registry.url, plan.schema_registry.host_url) == (
        "http://redpanda:8081",
        "http://localhost:18081",
    )
    state = run_init_script(document, "topics-init", fake_rpk)
    assert state["subjects"] == {
        subject.subject: {
            "level": "BACKWARD",
            "versions": [json.dumps(json.loads(subject.definition), sort_keys=True)],
        }
    }
    assert plan.service("api").env["SCHEMA_REGISTRY_URL"] == "http://redpanda:8081"
    host = run_cli("env", "--stack", "local", "--host", "--service", "api", cwd=project.root)
    assert "export SCHEMA_REGISTRY_URL=http://localhost:18081" in host.stdout, host.stdout + host.stderr


def test_a_topology_without_schemas_has_no_registry_in_compose(example_dir: Path) -> None:
    text = (example_dir / "docker-compose.kafka.yml").read_text()
    assert "schema-registry" not in text and "RPK_REGISTRY_HOSTS" not in text
