"""`make local` where no Docker engine runs: `python -m infra local up --runtime java` starts
Apache Kafka on the local stack's ports with the plan applied; every later `up` converges the
running broker to the plan; a restart keeps the data; `down` and `reset` stop it."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from infra.live import local_cluster, local_redis, local_registry
from infra.live.kafka_broker import Broker, missing_tools, ports_in_use
from infra.live.schema_registry import RegistryLogin, SchemaRegistry
from infra.plan.model import Plan
from infra.render.compose import local_password_default
from tests.eventually import eventually
from tests.integration import access_checks as check
from tests.project_files import Project
from tests.test_event_schemas import MOOD, with_schema
from tests.test_event_schemas import record as event_record

ADMIN_PASSWORD = "local-dev-only-admin"  # pragma: allowlist secret - the compose default


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli(project: Project, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra", "--project-dir", str(project.root), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def on_local_ports(project: Project, open_port: int, secure_port: int) -> Project:
    """The local stack's two listeners on these ports (free ones, not the defaults a developer's
    own broker may hold), and its Schema Registry on free ones too."""
    return project.edit_settings(
        "local",
        lambda s: s["kafka"]["local"].update(
            external_bootstrap=f"localhost:{open_port}",
            secure_external_bootstrap=f"localhost:{secure_port}",
            schema_registry_port=free_registry_port(),
        ),
    )


def free_registry_port() -> int:
    """A free port whose health port (1000 above, run-registry's) is free too."""
    while True:
        port = free_port()
        if port + local_registry.HEALTH_PORT_OFFSET <= 65535 and not ports_in_use(
            local_registry.registry_ports(port)
        ):
            return port


def local_up(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    result = cli(project, "local", "up", "--runtime", "java", *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture(scope="module")
def local_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    if missing_tools():
        pytest.skip("needs Java and Maven")
    # One event with a schema: the same `up` runs the Schema Registry beside the broker.
    project = with_schema(
        on_local_ports(Project(tmp_path_factory.mktemp("local")), free_port(), free_port()),
        event_record(MOOD, name="MoodCreated"),
    )
    started = local_up(project)
    assert started.returncode == 0, started.stderr
    assert "warning: no Schema Registry" not in started.stdout, started.stdout
    assert "started Apache Kafka from its jars" in started.stdout
    assert "Users on" in started.stdout and "aura360.local.api" in started.stdout
    assert "kafka-platform env --stack local --host --secure --service <name>" in started.stdout
    yield project
    cli(project, "local", "reset", "--runtime", "java")


def secure_broker(plan: Plan, user: str = "admin", mechanism: str = "SCRAM-SHA-256") -> Broker:
    return Broker(
        bootstrap=plan.cluster.local_settings().secure_external_bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        admin_user=user,
        admin_password=ADMIN_PASSWORD,
        description="local Kafka, secure listener",
    )


def open_admin(plan: Plan) -> AdminClient:
    return AdminClient({"bootstrap.servers": plan.cluster.local_settings().external_bootstrap})


def partitions(plan: Plan) -> dict[str, int]:
    topics = open_admin(plan).list_topics(timeout=15).topics
    return {name: len(topic.partitions) for name, topic in topics.items() if not name.startswith("__")}


def test_the_open_listener_holds_every_topic_of_the_plan(local_project: Project) -> None:
    plan = local_project.plan("local")
    assert {name: count for name, count in partitions(plan).items()} == {
        t.name: t.partitions for t in plan.topics
    }


def test_the_secure_listener_enforces_the_plans_acls_with_the_local_passwords(local_project: Project) -> None:
    plan = local_project.plan("local")
    broker = secure_broker(plan)
    api = plan.service("api")
    password = local_password_default("api")
    assert check.can_produce(broker, api.principal, password, api.produces[0])
    assert not check.can_produce(broker, api.principal, password, plan.topic("context.vectorized").name)


def test_the_admin_logs_in_with_either_scram_mechanism(local_project: Project) -> None:
    plan = local_project.plan("local")
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        assert check.can_authenticate(secure_broker(plan, mechanism=mechanism), "admin", ADMIN_PASSWORD)


def exported(text: str) -> dict[str, str]:
    lines = [line.removeprefix("export ") for line in text.splitlines() if line.startswith("export ")]
    return {key: shlex.split(value)[0] for key, value in (line.split("=", 1) for line in lines)}


def test_the_printed_secure_env_is_enough_to_produce(local_project: Project) -> None:
    """What `env --host --secure` prints is all a service on the host needs."""
    printed = cli(local_project, "env", "--stack", "local", "--host", "--secure", "--service", "api")
    assert printed.returncode == 0, printed.stderr
    env = exported(printed.stdout)
    producer = Producer(
        {
            "bootstrap.servers": env["KAFKA_BROKER_URL"],
            "security.protocol": env["KAFKA_SECURITY_PROTOCOL"],
            "sasl.mechanism": env["KAFKA_SASL_MECHANISM"],
            "sasl.username": env["KAFKA_SASL_USERNAME"],
            "sasl.password": env["KAFKA_SASL_PASSWORD"],
            "enable.idempotence": env["KAFKA_ENABLE_IDEMPOTENCE"],
        }
    )
    reports: list[Any] = []
    producer.produce(
        env["KAFKA_TOPIC_USER_EVENTS"], b"v", key=b"k", on_delivery=lambda e, _m: reports.append(e)
    )
    producer.flush(30)
    assert reports == [None]


def test_the_subjects_are_registered_in_the_registry_the_services_env_names(local_project: Project) -> None:
    """Apicurio's ccompat API on the stack's registry port holds each subject with its level,
    and `env --host` gives exactly that address to the services that write or read it."""
    plan = local_project.plan("local")
    (subject,) = plan.subjects
    url = f"http://localhost:{plan.cluster.local_settings().schema_registry_port}/apis/ccompat/v7"
    registry = SchemaRegistry(RegistryLogin(url=url))
    latest = registry.latest(subject.subject)
    assert latest is not None and json.loads(latest.schema) == json.loads(subject.definition)
    assert registry.compatibility(subject.subject) == subject.compatibility
    for service in plan.services:
        printed = cli(local_project, "env", "--stack", "local", "--host", "--service", service.name)
        assert printed.returncode == 0, printed.stderr
        uses = service.name in (*subject.producers, *subject.consumers)
        assert exported(printed.stdout).get("SCHEMA_REGISTRY_URL") == (url if uses else None), service.name
    again = local_up(local_project)
    assert f"running: Schema Registry (Apicurio) at {url}" in again.stdout, again.stdout
    assert f"subject {subject.subject}: {subject.compatibility}, schema id {latest.schema_id}" in again.stdout


def add_auditor_drop_guardian(topology: dict[str, Any]) -> None:
    topology["topics"]["audit.log"] = {"partitions": 2, "retention": "1d"}
    topology["services"]["api"]["produces"].append("audit.log")
    topology["services"]["auditor"] = {"consumes": ["audit.log"]}
    del topology["services"]["guardian"]
    topology["services"]["api"]["produces"].remove("guardian.requests")
    topology["services"]["api"]["consumes"].remove("guardian.responses")
    topology["events"] = {
        name: event for name, event in topology["events"].items() if not name.startswith("guardian.")
    }


def test_an_edit_converges_the_running_broker_and_deletes_nothing(local_project: Project) -> None:
    before = local_project.plan("local")
    local_project.edit_topology(add_auditor_drop_guardian)
    local_project.write(".env", "LOCAL_KAFKA_PASSWORD_API=changed-in-dot-env\n")  # pragma: allowlist secret
    plan = local_project.plan("local")

    applied = local_up(local_project)
    assert applied.returncode == 0, applied.stderr
    assert "is running: applied the plan to it" in applied.stdout
    assert "created topic aura360.audit.log (2 partitions)" in applied.stdout
    assert "created user aura360.local.auditor" in applied.stdout
    assert "granted aura360.local.auditor READ TOPIC aura360.audit.log" in applied.stdout
    assert "granted aura360.local.api WRITE TOPIC aura360.audit.log" in applied.stdout
    assert "left alone: user aura360.local.guardian is not in the plan" in applied.stdout
    assert "deleted" not in applied.stdout
    # Without Docker too, the generated compose mirror follows the edit (CI checks it).
    assert "regenerated docker-compose.kafka.yml from the topology" in applied.stdout
    assert cli(local_project, "compose", "--check").returncode == 0

    live = partitions(plan)
    assert live["aura360.audit.log"] == 2
    assert {t.name for t in before.topics} <= set(live), "nothing the plan dropped was deleted"
    broker = secure_broker(plan)
    auditor, api = plan.service("auditor"), plan.service("api")
    assert check.can_produce(broker, api.principal, "changed-in-dot-env", "aura360.audit.log")
    assert not check.can_authenticate(broker, api.principal, local_password_default("api"))
    assert check.can_consume(
        broker, auditor.principal, local_password_default("auditor"), "aura360.audit.log", "aura360.auditor"
    )

    again = local_up(local_project)
    assert "nothing to create or change; the plan no longer has these, and they stay:" in again.stdout
    assert "nothing to change: the broker matches the plan" not in again.stdout


def test_a_partition_decrease_is_refused_with_nothing_changed(local_project: Project) -> None:
    plan = local_project.plan("local")
    original = local_project.root / "topology.yaml"
    saved = original.read_text()

    def shrink(topology: dict[str, Any]) -> None:
        topology["topics"]["user.events"]["partitions"] = 1
        topology["topics"]["late.arrival"] = {"partitions": 1}
        topology["services"]["api"]["produces"].append("late.arrival")

    local_project.edit_topology(shrink)
    refused = local_up(local_project)
    assert refused.returncode == 2
    assert "Kafka cannot remove partitions, so nothing was changed: aura360.user.events: 6" in refused.stderr
    live = partitions(plan)
    assert live["aura360.user.events"] == 6 and "aura360.late.arrival" not in live
    original.write_text(saved)


def consume_one(plan: Plan, topic: str, value: bytes) -> bool:
    consumer = Consumer(
        {
            "bootstrap.servers": plan.cluster.local_settings().external_bootstrap,
            "group.id": f"restart-check-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    try:
        seen = eventually(
            lambda: consumer.poll(1.0), lambda m: m is not None and m.error() is None and m.value() == value
        )
        return seen is not None
    finally:
        consumer.close()


def celery_broker(project: Project) -> redis.Redis:
    printed = cli(project, "env", "--stack", "local", "--host", "--service", "api")
    assert printed.returncode == 0, printed.stderr
    return redis.Redis.from_url(exported(printed.stdout)["CELERY_BROKER_URL"], socket_timeout=5)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_the_celery_fallback_gets_a_real_redis_beside_the_broker(local_project: Project) -> None:
    """`backend: celery` points every service at the local Redis: without Docker, `local up`
    starts one there (it used to print the URL with nothing listening)."""
    port = free_port()

    def celery_backend(settings: dict[str, Any]) -> None:
        settings["messaging"]["backend"] = "celery"
        settings["kafka"]["local"]["redis_host_port"] = port

    local_project.edit_settings("local", celery_backend)
    applied = local_up(local_project)
    assert applied.returncode == 0, applied.stderr
    assert f"started Redis on localhost:{port}" in applied.stdout

    broker = celery_broker(local_project)
    assert broker.connection_pool.connection_kwargs["port"] == port
    broker.lpush("celery", "a task queued before the restart")
    again = local_up(local_project)
    assert f"running: Redis on localhost:{port}" in again.stdout, "a second up reuses it"

    # Another redis_host_port: the running Redis moves there with its data (it used to claim
    # "running" on the new port while still listening on the old one).
    moved = free_port()
    local_project.edit_settings("local", lambda s: s["kafka"]["local"].update(redis_host_port=moved))
    applied = local_up(local_project)
    assert f"started Redis on localhost:{moved}" in applied.stdout, applied.stdout
    assert celery_broker(local_project).lrange("celery", 0, -1) == [b"a task queued before the restart"]
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "nothing listens on the old port"


def test_a_running_broker_on_other_ports_than_the_stack_file_is_refused(local_project: Project) -> None:
    saved = (local_project.root / "Pulumi.local.yaml").read_text()
    local = local_project.plan("local").cluster.local_settings()
    elsewhere = free_port()
    local_project.edit_settings(
        "local", lambda s: s["kafka"]["local"].update(external_bootstrap=f"localhost:{elsewhere}")
    )
    refused = local_up(local_project)
    open_port, secure_port = (
        int(a.rsplit(":", 1)[1]) for a in (local.external_bootstrap, local.secure_external_bootstrap)
    )
    assert refused.returncode == 1
    assert (
        f"this checkout's broker runs on ports {open_port} and {secure_port}; Pulumi.local.yaml now says "
        f"{elsewhere} and {secure_port}: `make local-down`, then `make local`"
    ) in refused.stderr
    assert "Connection refused" not in refused.stderr, "no librdkafka noise"
    (local_project.root / "Pulumi.local.yaml").write_text(saved)


def test_a_restart_keeps_the_data(local_project: Project) -> None:
    plan = local_project.plan("local")
    marker = f"before-restart-{uuid.uuid4().hex[:6]}".encode()
    producer = Producer({"bootstrap.servers": plan.cluster.local_settings().external_bootstrap})
    producer.produce("aura360.audit.log", marker, key=b"k")
    assert producer.flush(30) == 0

    stopped = cli(local_project, "local", "down", "--runtime", "java")
    assert stopped.returncode == 0 and "its data stays" in stopped.stdout
    local = plan.cluster.local_settings()
    addresses = [local.external_bootstrap, f"localhost:{local.schema_registry_port}"]
    if plan.celery_broker is not None:
        addresses.append(f"localhost:{local.redis_host_port}")
    for address in addresses:
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", int(address.rsplit(":", 1)[1]))) != 0, f"{address} stopped"

    restarted = local_up(local_project)
    assert restarted.returncode == 0, restarted.stderr
    assert "started Apache Kafka from its jars" in restarted.stdout
    # The registry keeps its subjects in memory: the restart registered them again.
    assert "started Schema Registry (Apicurio)" in restarted.stdout, restarted.stdout
    assert f"subject {plan.subjects[0].subject}: BACKWARD" in restarted.stdout
    # The data is back, so nothing is created (what the earlier edit dropped is still left alone).
    assert "nothing to create or change" in restarted.stdout
    assert consume_one(plan, "aura360.audit.log", marker)
    if plan.celery_broker is not None:
        assert celery_broker(local_project).lrange("celery", 0, -1) == [b"a task queued before the restart"]
        # The plan no longer needs Redis: `up` stops it instead of leaving it running unseen.
        local_project.edit_settings("local", lambda s: s["messaging"].update(backend="kafka"))
        without = local_up(local_project)
        assert "stopped Redis: the plan no longer routes to it" in without.stdout, without.stdout
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", local.redis_host_port)) != 0, "Redis stopped"


def test_prune_deletes_what_the_plan_no_longer_has(local_project: Project) -> None:
    plan = local_project.plan("local")
    pruned = local_up(local_project, "--prune")
    assert pruned.returncode == 0, pruned.stderr
    assert "deleted user aura360.local.guardian" in pruned.stdout
    assert (
        "deleted ACL ALLOW User:aura360.local.guardian READ TOPIC aura360.guardian.requests" in pruned.stdout
    )
    assert not check.can_authenticate(
        secure_broker(plan), "aura360.local.guardian", local_password_default("guardian")
    )
    assert "left alone" not in local_up(local_project).stdout


def test_a_renamed_domain_leaves_nothing_unseen_and_prune_cleans_it(local_project: Project) -> None:
    """The old domain's topics, users and grants were invisible after a rename (out of the new
    domain's scope): now they are listed, and `--prune` deletes them."""
    before = local_project.plan("local")
    local_project.edit_topology(lambda topology: topology.update(domain="shop"))
    renamed = local_up(local_project)
    assert renamed.returncode == 0, renamed.stderr
    assert "created topic shop.audit.log (2 partitions)" in renamed.stdout
    old_domain = "belongs to domain 'aura360', which topology.yaml no longer names"
    assert f"left alone: topic aura360.audit.log {old_domain}" in renamed.stdout
    assert f"left alone: user aura360.local.api {old_domain}" in renamed.stdout
    assert f"left alone: ACL ALLOW User:aura360.local.api WRITE TOPIC aura360.audit.log {old_domain}" in (
        renamed.stdout
    )

    # drift sees them too (it used to say "in sync" after a rename).
    drift = cli(local_project, "drift", "--stack", "local", "--format", "json")
    assert drift.returncode == 3, drift.stdout + drift.stderr
    report = json.loads(drift.stdout)
    assert "aura360.audit.log" in report["extra_topics"]
    assert "user aura360.local.api" in report["leftover_principals"]

    pruned = local_up(local_project, "--prune")
    assert pruned.returncode == 0, pruned.stderr
    assert "deleted topic aura360.audit.log" in pruned.stdout
    assert not any(name.startswith("aura360.") for name in partitions(before)), (
        "the old domain's topics are gone"
    )
    assert not check.can_authenticate(secure_broker(before), "aura360.local.api", "changed-in-dot-env")
    assert "left alone" not in local_up(local_project).stdout
    assert cli(local_project, "drift", "--stack", "local").returncode == 0


def test_reset_deletes_the_data(local_project: Project) -> None:
    reset = cli(local_project, "local", "reset", "--runtime", "java")
    assert reset.returncode == 0 and "deleted build/local-kafka/" in reset.stdout
    assert not (Path(local_project.root) / "build" / "local-kafka").exists()


def test_a_broker_that_cannot_start_says_why_in_one_line(tmp_path: Path) -> None:
    if missing_tools():
        pytest.skip("needs Java and Maven")
    project = Project(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        project.edit_settings(
            "local",
            lambda s: s["kafka"]["local"].update(
                external_bootstrap=f"localhost:{port}", secure_external_bootstrap=f"localhost:{free_port()}"
            ),
        )
        failed = local_up(project)
    assert failed.returncode == 1
    lines = failed.stderr.strip().splitlines()
    # Found before the JVM starts: the port and what holds it, in one line.
    assert len(lines) == 1 and lines[0].startswith(
        f"local: cannot start the local Kafka: port {port} is in use by another process"
    ), lines


def test_without_redis_server_the_missing_redis_is_said_plainly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server on it
    with pytest.raises(local_redis.RedisMissing) as missing:
        local_redis.start(tmp_path / "redis", 16379)
    assert "needs Redis on localhost:16379" in str(missing.value)
    assert "redis-server is not installed" in str(missing.value)
    assert not (tmp_path / "redis").exists(), "nothing was started or written"


def test_a_registry_that_cannot_start_is_a_warning_and_kafka_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run-registry itself fails (here: no Maven to fetch Apicurio with, into an empty cache):
    `up` says so in one warning line with the script's reason, and nothing is left running."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "mkdir"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("KAFKA_PLATFORM_CACHE", str(tmp_path / "cache"))
    (tmp_path / "project").mkdir()
    project = with_schema(Project(tmp_path / "project"), event_record(MOOD, name="MoodCreated"))
    plan = project.plan("local")
    said = local_cluster.registry_up(project.root, plan)
    assert said == (
        "warning: no Schema Registry, the plan's 1 subject(s) are not registered: "
        "run-registry: mvn not found (needed once to download the distribution)",
    )
    assert local_registry.running_port(project.root / local_cluster.REGISTRY_DIR) is None
