"""docker-compose.kafka.yml as Docker Compose itself reads it.

`tools/compose-config` is a small Go program around compose-go, the loader inside
`docker compose`: schema validation, profiles, `${VAR:-default}` and `$$` interpolation, and
.env files. `make tools` builds it where Go is installed; `.ci/run` requires it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.plan.resolve import load_plan
from infra.render.alert_rules import rule_groups
from infra.render.compose import unescape_compose
from tests.project_files import Project
from tests.test_event_schemas import MOOD, with_schema
from tests.test_event_schemas import record as event_record

COMPOSE_CONFIG = Path(sys.executable).parent / "compose-config"
REQUIRED = os.environ.get("KAFKA_PLATFORM_REQUIRE_COMPOSE_LOADER") == "1"
DEFAULT_SERVICES = {"redpanda", "console", "topics-init"}
SECURE_SERVICES = DEFAULT_SERVICES | {"redpanda-secure", "acl-init"}
BROKER_PORTS = {"kafka": 9092, "admin": 9644, "registry": 8081}


@pytest.fixture(scope="module")
def loader() -> Path:
    if not COMPOSE_CONFIG.exists():
        if REQUIRED:
            pytest.fail(f"{COMPOSE_CONFIG} is missing but required here: run `make tools`")
        pytest.skip(f"{COMPOSE_CONFIG} not built (needs Go): run `make tools`")
    return COMPOSE_CONFIG


def load(loader: Path, file: Path, *profiles: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    args = [str(loader), *(arg for p in profiles for arg in ("-profile", p)), str(file)]
    clean_env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **(env or {})}
    result = subprocess.run(args, capture_output=True, text=True, check=False, env=clean_env)
    assert result.returncode == 0, result.stderr
    project: dict[str, Any] = json.loads(result.stdout)
    return project


@pytest.fixture
def compose_copy(example_dir: Path, tmp_path: Path) -> Path:
    """The committed file alone in a directory, so no stray .env changes what it resolves to."""
    return Path(shutil.copy(example_dir / "docker-compose.kafka.yml", tmp_path / "docker-compose.kafka.yml"))


def test_profiles_select_the_documented_services(loader: Path, compose_copy: Path) -> None:
    assert set(load(loader, compose_copy)["services"]) == DEFAULT_SERVICES
    assert set(load(loader, compose_copy, "secure")["services"]) == SECURE_SERVICES


CLIENT_ADDRESSES = {
    "RPK_BROKERS": "kafka",
    "KAFKA_BROKERS": "kafka",
    "RPK_ADMIN_HOSTS": "admin",
    "RPK_REGISTRY_HOSTS": "registry",
}


def test_every_client_address_is_a_broker_of_the_same_profile(loader: Path, compose_copy: Path) -> None:
    for profiles in ((), ("secure",)):
        services = load(loader, compose_copy, *profiles)["services"]
        brokers = {name for name, s in services.items() if (s.get("command") or [""])[0] == "redpanda"}
        for name, service in services.items():
            for key, api in CLIENT_ADDRESSES.items():
                if key in service.get("environment", {}):
                    host, port = service["environment"][key].rsplit(":", 1)
                    assert host in brokers, f"{name}.{key} -> {host}"
                    assert int(port) == BROKER_PORTS[api], f"{name}.{key}"
                    assert host in service.get("depends_on", {}), f"{name} must wait for {host}"


def test_every_init_job_is_awaited_by_a_running_service(loader: Path, compose_copy: Path) -> None:
    """`docker compose up --wait` (what `make local` runs) exits 1 when a one-shot container
    exits, even with 0, unless a long-running service depends on its successful completion."""
    for profiles in ((), ("secure",)):
        services = load(loader, compose_copy, *profiles)["services"]
        one_shot = {name for name, s in services.items() if s.get("restart") == "no"}
        assert one_shot, profiles
        for job in one_shot:
            adopters = [
                name
                for name, service in services.items()
                if name not in one_shot
                and service.get("depends_on", {}).get(job, {}).get("condition")
                == "service_completed_successfully"
            ]
            assert adopters, f"nothing waits for {job} with profiles {profiles}"


def test_scripts_are_what_the_containers_run(loader: Path, compose_copy: Path) -> None:
    """Compose turns `$$` into `$`; the scripts the fake-rpk tests run must be the same text."""
    resolved = load(loader, compose_copy, "secure")["services"]
    raw = yaml.safe_load(compose_copy.read_text())["services"]
    for name in ("topics-init", "acl-init"):
        assert resolved[name]["entrypoint"] == ["/bin/bash", "-c"]
        assert resolved[name]["command"] == [unescape_compose(raw[name]["command"][0])]


def test_secure_broker_boots_with_sasl_and_the_admin_that_init_uses(loader: Path, compose_copy: Path) -> None:
    overridden = {"LOCAL_KAFKA_ADMIN_PASSWORD": "changed"}  # pragma: allowlist secret - a test value
    for env, password in (({}, "local-dev-only-admin"), (overridden, "changed")):
        project = load(loader, compose_copy, "secure", env=env)
        broker, init = project["services"]["redpanda-secure"], project["services"]["acl-init"]
        (mount,) = broker["configs"]
        assert mount["target"] == "/etc/redpanda/.bootstrap.yaml"
        bootstrap = yaml.safe_load(project["configs"][mount["source"]]["content"])
        user, _, secret = broker["environment"]["RP_BOOTSTRAP_USER"].partition(":")
        assert bootstrap == {"enable_sasl": True, "superusers": [user]}
        assert (init["environment"]["RPK_USER"], init["environment"]["RPK_PASS"]) == (user, password)
        assert secret == password


def test_dot_env_overrides_the_local_passwords(loader: Path, compose_copy: Path, example_dir: Path) -> None:
    plan = load_plan(example_dir, "local")
    (compose_copy.parent / ".env").write_text("LOCAL_KAFKA_PASSWORD_API=from-dot-env\n")
    environment = load(loader, compose_copy, "secure")["services"]["acl-init"]["environment"]
    passwords = {key: value for key, value in environment.items() if key.startswith("LOCAL_KAFKA_PASSWORD_")}
    assert len(passwords) == len(plan.services)
    assert passwords["LOCAL_KAFKA_PASSWORD_API"] == "from-dot-env"  # pragma: allowlist secret
    del passwords["LOCAL_KAFKA_PASSWORD_API"]
    assert all(value.startswith("local-dev-only-") for value in passwords.values())


def test_the_loader_rejects_what_compose_would(loader: Path, compose_copy: Path) -> None:
    document = yaml.safe_load(compose_copy.read_text())
    document["services"]["redpanda"]["healthcheck"]["retries"] = "many"
    compose_copy.write_text(yaml.safe_dump(document))
    result = subprocess.run([str(loader), str(compose_copy)], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "retries" in result.stderr


VIBESTREAM = Path(__file__).resolve().parent.parent / "examples" / "vibestream"


def test_a_topology_routing_to_redis_gets_a_healthy_redis_its_urls_name(loader: Path, tmp_path: Path) -> None:
    from infra.render.compose import render_compose
    from infra.render.env_output import render_env

    plan = load_plan(VIBESTREAM, "local")
    file = tmp_path / "docker-compose.kafka.yml"
    file.write_text(render_compose(plan))
    for profiles in ((), ("secure",)):
        services = load(loader, file, *profiles)["services"]
        assert set(services) == (SECURE_SERVICES if profiles else DEFAULT_SERVICES) | {"redis"}
    redis = load(loader, file)["services"]["redis"]
    assert redis["image"].startswith("redis:")
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert [(p["target"], p["published"]) for p in redis["ports"]] == [(6379, "16379")]
    assert any(v["target"] == "/data" and v["type"] == "volume" for v in redis["volumes"])
    # Containers reach it as redis:6379, host processes as localhost:16379.
    api = plan.service("player-api").env
    assert (api["REDIS_URL"], api["CELERY_BROKER_URL"]) == ("redis://redis:6379/0", "redis://redis:6379/1")
    host = render_env(plan, services=["player-api"], host=True)
    assert "export REDIS_URL=redis://localhost:16379/0" in host
    assert "export CELERY_BROKER_URL=redis://localhost:16379/1" in host


def test_no_redis_where_nothing_needs_it(loader: Path, compose_copy: Path, example_dir: Path) -> None:
    """The default topology routes every event to Kafka and its local backend is kafka."""
    assert "redis" not in load(loader, compose_copy, "secure")["services"]
    for service in load_plan(example_dir, "local").services:
        assert "REDIS_URL" not in service.env and "CELERY_BROKER_URL" not in service.env


def test_the_monitoring_profile_runs_the_exporter_and_prometheus_with_the_plans_rules(
    loader: Path, compose_copy: Path, example_dir: Path
) -> None:
    project = load(loader, compose_copy, "monitoring")
    services = project["services"]
    assert set(services) == DEFAULT_SERVICES | {"kafka-exporter", "prometheus"}
    assert services["kafka-exporter"]["command"] == ["--kafka.server=redpanda:9092"]
    configs = project["configs"]
    prometheus = yaml.safe_load(configs["prometheus-config"]["content"])
    assert prometheus["scrape_configs"][0]["static_configs"][0]["targets"] == ["kafka-exporter:9308"]
    rules = yaml.safe_load(configs["prometheus-rules"]["content"])
    plan = load_plan(example_dir, "local")
    assert rules == {"groups": rule_groups(plan)}, "Compose's interpolation leaves the rules intact"
    summaries = [r["annotations"]["summary"] for g in rules["groups"] for r in g["rules"]]
    assert any("{{ $value }}" in summary for summary in summaries)


def test_vibestream_monitors_its_redis_too(loader: Path, tmp_path: Path) -> None:
    copied = shutil.copy(VIBESTREAM / "docker-compose.kafka.yml", tmp_path / "docker-compose.kafka.yml")
    compose_file = Path(copied)
    services = load(loader, compose_file, "monitoring")["services"]
    assert {"redis-exporter", "redis", "prometheus"} <= set(services)
    assert services["redis-exporter"]["environment"]["REDIS_ADDR"] == "redis://redis:6379"


def test_a_topology_with_schemas_gets_redpandas_registry_on_the_host_port(
    loader: Path, project: Project, tmp_path: Path
) -> None:
    """Compose reads the registry flag, the published port and the init job's registry address
    (one of the same profile's brokers, checked like every client address), and the heredoc
    that hands `rpk registry schema create` its schema survives interpolation intact."""
    from infra.render.compose import render_compose

    plan = with_schema(project, event_record(MOOD, name="MoodCreated")).plan("local")
    file = tmp_path / "docker-compose.kafka.yml"
    file.write_text(render_compose(plan))
    test_every_client_address_is_a_broker_of_the_same_profile(loader, file)
    services = load(loader, file)["services"]
    redpanda = services["redpanda"]
    assert ("18081", 18081) in [(p["published"], p["target"]) for p in redpanda["ports"]]
    assert "--schema-registry-addr=internal://0.0.0.0:8081,external://0.0.0.0:18081" in redpanda["command"]
    script = services["topics-init"]["command"][0]
    assert f"cat > /tmp/schema.avsc <<'SCHEMA'\n{plan.subjects[0].definition}\nSCHEMA\n" in script
