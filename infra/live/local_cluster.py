"""The local stack's Kafka: Docker Compose where an engine runs, otherwise Apache Kafka from its
Maven Central jars, holding the local plan as docker-compose.kafka.yml's two profiles do.

- the open listener (`external_bootstrap`, localhost:19092): no authentication, every topic;
- the SASL listener (`secure_external_bootstrap`, localhost:19093): SCRAM-SHA-256 with one user
  per service and exactly the plan's ACLs, with the LOCAL-DEV-ONLY passwords of `.env` (or the
  defaults of `.env.example`) on both paths.

A restart reuses the broker's data; every `up` converges the running broker to the plan.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from infra.live import local_redis, local_registry
from infra.live.cluster_admin import AdminLogin, ClusterUnreachable, connect
from infra.live.converge import Changes, converge, set_passwords
from infra.live.kafka_broker import (
    Broker,
    BrokerOptions,
    PortInUse,
    missing_tools,
    ports_in_use,
    running_pid,
    saved_cluster_id,
    start_detached,
    stop_detached,
)
from infra.live.live_cluster import read_cluster
from infra.plan.model import Plan
from infra.render.compose import (
    ADMIN_PASSWORD_VAR,
    ADMIN_USER,
    COMPOSE_FILE,
    LOCAL_PASSWORD_DEFAULT,
    LOCAL_SCRAM_MECHANISM,
    SECURE_PROFILE,
    local_password_default,
    password_variable,
)

STATE_DIR = Path("build") / "local-kafka"
REDIS_DIR = STATE_DIR / "redis"
REGISTRY_DIR = STATE_DIR / "schema-registry"
OWNERS_FILE = "owners.json"
LISTENERS_FILE = "listeners.json"  # the ports the running broker was started on
ENV_FILE = ".env"
LOCAL_ADMIN_PASSWORD = f"{LOCAL_PASSWORD_DEFAULT}-admin"  # pragma: allowlist secret - the compose default
# What the compose `secure` profile's users use (Redpanda's); the Java path's admin also has 512.
SECURE_MECHANISM = LOCAL_SCRAM_MECHANISM
ADMIN_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class LocalUser:
    service: str  # "" for the admin
    username: str
    password: str
    from_env_file: bool


@dataclass(frozen=True)
class LocalCluster:
    open_bootstrap: str
    secure_bootstrap: str
    started: bool  # False: it was running already
    changes: Changes
    redis: str | None = None  # what became of the local Redis, when the plan needs one
    # What became of the local Schema Registry and the plan's subjects in it, when it has any.
    registry: tuple[str, ...] = ()


def read_env_file(project_dir: Path) -> dict[str, str]:
    """`.env` as Compose reads the simple form: KEY=VALUE lines, `#` comments, optional quotes."""
    path = project_dir / ENV_FILE
    if not path.is_file():
        return {}
    values = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.removeprefix("export ").split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def local_users(project_dir: Path, plan: Plan) -> list[LocalUser]:
    """The admin, then one user per service, with the password each has on the secure listener."""
    overrides = read_env_file(project_dir)

    def user(service: str, username: str, variable: str, default: str) -> LocalUser:
        return LocalUser(service, username, overrides.get(variable, default), variable in overrides)

    return [user("", ADMIN_USER, ADMIN_PASSWORD_VAR, LOCAL_ADMIN_PASSWORD)] + [
        user(s.name, s.principal, password_variable(s.name), local_password_default(s.name))
        for s in plan.services
    ]


def docker_engine_running() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def compose(project_dir: Path, *args: str) -> int:
    """`docker compose` on the generated file with every profile, so `down` stops them all."""
    command = ["docker", "compose", "-f", str(project_dir / COMPOSE_FILE), "--profile", SECURE_PROFILE]
    return subprocess.run([*command, *args], check=False).returncode


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def up(project_dir: Path, plan: Plan, prune: bool = False) -> LocalCluster:
    """Start the broker (reusing its data) unless it runs, then converge it to the plan.
    Raises RuntimeError with the reason, ConvergeRefused for a change Kafka cannot make."""
    local = plan.cluster.local_settings()
    _refuse_taken_ports(project_dir, plan)
    redis = _redis_up(project_dir, plan)
    try:
        started = _broker_up(project_dir, plan)
    except Exception:
        if redis is not None and redis.startswith("started"):
            local_redis.stop(project_dir / REDIS_DIR)  # a refused start leaves nothing running
        raise
    # The open listener's principal (ANONYMOUS) is a super user: it can set the admin's password too.
    broker = Broker(
        bootstrap=local.external_bootstrap,
        security_protocol="PLAINTEXT",
        sasl_mechanism="",
        admin_user="",
        admin_password="",
        description="the local broker's open listener",
    )
    stranger = stranger_on(project_dir, local.external_bootstrap)
    if stranger is not None:
        raise RuntimeError(stranger)
    admin_client = broker.admin()
    users = local_users(project_dir, plan)
    set_passwords(admin_client, {users[0].username: users[0].password}, ADMIN_MECHANISMS)
    former = served_owners(project_dir)
    changes = converge(
        admin_client,
        plan,
        read_cluster(broker),
        {user.username: user.password for user in users[1:]},
        (SECURE_MECHANISM,),
        prune=prune,
        former_owners=former,
    )
    current = (plan.domain, plan.stack)
    _save_owners(project_dir, [current] if prune else sorted({*former, current}))
    registry = registry_up(project_dir, plan)
    return LocalCluster(
        local.external_bootstrap, local.secure_external_bootstrap, started, changes, redis, registry
    )


def _listener_ports(plan: Plan) -> list[int]:
    local = plan.cluster.local_settings()
    return [_port(local.external_bootstrap), _port(local.secure_external_bootstrap)]


def _refuse_taken_ports(project_dir: Path, plan: Plan) -> None:
    """Every port this run would start something on, checked at once before anything starts;
    and a running broker must be on the ports the stack file names."""
    ports = _listener_ports(plan)
    saved = project_dir / STATE_DIR / LISTENERS_FILE
    if running_pid(project_dir / STATE_DIR) is not None:
        running = json.loads(saved.read_text()) if saved.is_file() else ports
        if running != ports:
            raise RuntimeError(
                f"this checkout's broker runs on ports {running[0]} and {running[1]}; Pulumi.local.yaml "
                f"now says {ports[0]} and {ports[1]}: `make local-down`, then `make local`"
            )
        taken = ""
    else:
        taken = ports_in_use(ports)
    redis_port = local_redis.redis_port(plan)
    if redis_port is not None and local_redis.running_port(project_dir / REDIS_DIR) != redis_port:
        taken = "; ".join(filter(None, [taken, ports_in_use([redis_port], local_redis.holder)]))
    registry_port = local_registry.registry_port(plan)
    if registry_port is not None:
        taken = "; ".join(
            filter(None, [taken, local_registry.taken_ports(project_dir / REGISTRY_DIR, registry_port)])
        )
    if taken:
        raise PortInUse(
            f"{taken}: nothing was started. Stop what holds it (`make local-down` in its checkout) or "
            "give this stack other ports (kafka.local.external_bootstrap, secure_external_bootstrap, "
            "redis_host_port, schema_registry_port in Pulumi.local.yaml)"
        )


def _broker_up(project_dir: Path, plan: Plan) -> bool:
    """Start this checkout's broker unless it runs; True when it was started now."""
    if running_pid(project_dir / STATE_DIR) is not None:
        return False
    missing = missing_tools()
    if missing:
        raise RuntimeError(f"neither a Docker engine nor {' and '.join(missing)} to start Apache Kafka")
    local = plan.cluster.local_settings()
    admin = local_users(project_dir, plan)[0]
    options = BrokerOptions(
        port=_port(local.secure_external_bootstrap),
        plaintext_port=_port(local.external_bootstrap),
        admin_user=admin.username,
        admin_password=admin.password,
    )
    start_detached(project_dir / STATE_DIR, options)
    (project_dir / STATE_DIR / LISTENERS_FILE).write_text(json.dumps(_listener_ports(plan)) + "\n")
    return True


def served_owners(project_dir: Path) -> list[tuple[str, str]]:
    """Every (domain, stack) whose topics, users and grants `up` has put on this checkout's
    broker: a renamed domain's stay listed (and `--prune` deletes them) instead of vanishing
    from view."""
    path = project_dir / STATE_DIR / OWNERS_FILE
    if not path.is_file():
        return []
    return [(str(domain), str(stack)) for domain, stack in json.loads(path.read_text())]


def _save_owners(project_dir: Path, owners: list[tuple[str, str]]) -> None:
    (project_dir / STATE_DIR / OWNERS_FILE).write_text(json.dumps([list(o) for o in owners]) + "\n")


def _redis_up(project_dir: Path, plan: Plan) -> str | None:
    """Start the plan's Redis (before the broker, so a port clash changes nothing); a missing
    redis-server is said, not fatal: Kafka works without it."""
    port = local_redis.redis_port(plan)
    if port is None:
        if local_redis.stop(project_dir / REDIS_DIR):
            return "stopped Redis: the plan no longer routes to it (its data stays until `make local-reset`)"
        return None
    try:
        started = local_redis.start(project_dir / REDIS_DIR, port)
    except local_redis.RedisMissing as missing:
        return f"warning: {missing}"
    verb = "started" if started else "running:"
    return f"{verb} Redis on localhost:{port} (the services' REDIS_URL, CELERY_BROKER_URL)"


def registry_up(project_dir: Path, plan: Plan) -> tuple[str, ...]:
    """Start Apicurio for the plan's subjects and register them (after the broker took the plan,
    so a refused run starts nothing); one that cannot start is said, not fatal: Kafka works
    without it."""
    work = project_dir / REGISTRY_DIR
    port = local_registry.registry_port(plan)
    if port is None:
        if local_registry.stop(work):
            return ("stopped the Schema Registry: the plan has no event schemas any more",)
        return ()
    try:
        started = local_registry.start(work, port)
    except local_registry.RegistryNotStarted as failed:
        return (
            f"warning: no Schema Registry, the plan's {len(plan.subjects)} subject(s) are not registered: "
            f"{failed}",
        )
    url = local_registry.running_url(work)
    assert url is not None
    verb = "started" if started else "running:"
    return (
        f"{verb} Schema Registry (Apicurio) at {url} (the services' SCHEMA_REGISTRY_URL with `env --host`)",
        *local_registry.register_subjects(url, plan),
    )


def host_registry_url(project_dir: Path, plan: Plan) -> str | None:
    """Where processes on the host reach the local stack's registry: this checkout's Apicurio
    (Java path) while it runs, else Redpanda's (Compose); None when the plan has no subjects."""
    registry = plan.schema_registry
    if registry is None or registry.host_url is None:
        return None
    return local_registry.running_url(project_dir / REGISTRY_DIR) or registry.host_url


def stranger_on(project_dir: Path, bootstrap: str, *, explicit: bool = False) -> str | None:
    """Why the broker answering at ``bootstrap`` is not this checkout's Java broker (another
    checkout's, say), or None. ``explicit``: the caller named the address itself, so a broker
    there is read on purpose. Where a Docker engine runs, the compose broker (which keeps no
    cluster id here) is taken as this checkout's."""
    own = saved_cluster_id(project_dir / STATE_DIR)
    if own is None and (explicit or docker_engine_running()):
        return None
    try:
        _, found = connect(AdminLogin((bootstrap,), "PLAINTEXT"), within=5)
    except ClusterUnreachable:
        return None
    if found == own:
        return None
    if own is None:
        return (
            f"no Kafka of this checkout has run ({STATE_DIR} holds none), and the broker at "
            f"{bootstrap} (cluster id {found}) is another's: nothing was read. Start this "
            "checkout's with `make local`, or name that broker with --bootstrap-servers to read it"
        )
    return (
        f"the Kafka broker at {bootstrap} (cluster id {found}) is not this checkout's "
        f"({STATE_DIR}, cluster id {own}): nothing was read or changed there. Stop it in its own "
        "checkout (`make local-down`), or give this stack other ports in Pulumi.local.yaml"
    )


def is_running(project_dir: Path) -> bool:
    return running_pid(project_dir / STATE_DIR) is not None


def stop(project_dir: Path) -> bool:
    """Stop the broker, the local Redis and the Schema Registry; False when none was running."""
    redis_stopped = local_redis.stop(project_dir / REDIS_DIR)
    registry_stopped = local_registry.stop(project_dir / REGISTRY_DIR)
    return stop_detached(project_dir / STATE_DIR) or redis_stopped or registry_stopped


def reset(project_dir: Path) -> bool:
    """Stop the broker and delete its data; False when there was no data."""
    stop(project_dir)
    state = project_dir / STATE_DIR
    if not state.exists():
        return False
    shutil.rmtree(state)
    return True
