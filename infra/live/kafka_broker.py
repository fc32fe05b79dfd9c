"""A real Kafka broker: for the integration tests, and for `make local` where Docker is missing.

Either the broker named by KAFKA_BOOTSTRAP_SERVERS (with admin credentials from the
environment), or Apache Kafka itself: its jars fetched once from Maven Central with Maven,
started in KRaft mode with SASL/SCRAM-SHA-512, the StandardAuthorizer and one super user.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"
ADMIN_USER = "platform-admin"
PID_FILE = "broker.pid"
IDENTITY_FILE = "storage-identity.json"
# Users made at format time get both, so a client may log in with either.
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")

LOG4J = "org.apache.logging.log4j"


def maven_pom(name: str, artifacts: list[tuple[str, str, str]]) -> str:
    """A pom listing only dependencies (group, artifact, version), for Maven to copy them."""
    dependencies = "".join(
        f"    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
        f"<version>{version}</version></dependency>\n"
        for group, artifact, version in artifacts
    )
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.kafka-platform</groupId>
  <artifactId>{name}</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{dependencies}  </dependencies>
</project>
"""


POM = maven_pom(
    "integration-broker",
    [
        ("org.apache.kafka", "kafka_2.13", KAFKA_VERSION),
        (LOG4J, "log4j-slf4j-impl", LOG4J_VERSION),
        (LOG4J, "log4j-core", LOG4J_VERSION),
    ],
)

LOG4J2 = """status = error
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
"""


@dataclass(frozen=True)
class Broker:
    bootstrap: str
    security_protocol: str
    sasl_mechanism: str
    admin_user: str
    admin_password: str
    description: str

    def client_config(self, username: str | None = None, password: str | None = None) -> dict[str, str]:
        config = {"bootstrap.servers": self.bootstrap, "security.protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL"):
            config |= {
                "sasl.mechanism": self.sasl_mechanism,
                "sasl.username": username or self.admin_user,
                "sasl.password": password or self.admin_password,
            }
        return config

    def admin(self) -> AdminClient:
        # Warnings and errors only: librdkafka's notices (e.g. BGQUEUE) mean nothing to a user.
        return AdminClient({**self.client_config(), "log_level": 4})

    def reader(self, purpose: str, *, committed_to_end: bool = False) -> Consumer:
        """A consumer to read partitions it is assigned: under a throw-away group of its own
        (``kafka-platform-<purpose>-<random>``), it never joins or commits under a real one.
        ``committed_to_end``: committed records only, and an event at each partition's end."""
        group = f"kafka-platform-{purpose}-{uuid.uuid4().hex[:8]}"
        to_end = (
            {"isolation.level": "read_committed", "enable.partition.eof": True} if committed_to_end else {}
        )
        return Consumer(
            self.client_config()
            | {
                "group.id": group,
                "enable.auto.commit": "false",
                "auto.offset.reset": "earliest",
                "log_level": 0,
            }
            | to_end
        )


def broker_from_environment() -> Broker | None:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        return None
    return Broker(
        bootstrap=bootstrap,
        security_protocol=os.environ.get("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"),
        sasl_mechanism=os.environ.get("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
        admin_user=os.environ.get("KAFKA_ADMIN_USERNAME", "admin"),
        admin_password=os.environ.get("KAFKA_ADMIN_PASSWORD", ""),
        description=f"broker from KAFKA_BOOTSTRAP_SERVERS={bootstrap}",
    )


def missing_tools() -> list[str]:
    return [tool for tool in ("java", "mvn") if shutil.which(tool) is None]


def cache_dir() -> Path:
    root = Path(os.environ.get("KAFKA_PLATFORM_CACHE", Path.home() / ".cache" / "kafka-platform"))
    return root / f"kafka-{KAFKA_VERSION}"


def fetch_kafka_jars() -> Path:
    """Kafka and its dependencies from Maven Central, downloaded once and reused."""
    return maven_jars(
        cache_dir(), POM, f"kafka_2.13-{KAFKA_VERSION}.jar", what=f"Apache Kafka {KAFKA_VERSION}"
    )


def maven_jars(directory: Path, pom: str, marker: str, what: str = "the jars") -> Path:
    """The dependencies ``pom`` declares, copied by Maven into ``directory/lib`` once (``marker``
    is a jar whose presence says they are there). Says on stderr what it downloads before it
    starts (a minute or more the first time); a failure is a RuntimeError with Maven's own error."""
    lib = directory / "lib"
    if lib.is_dir() and any(lib.glob(marker)):
        return lib
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pom.xml").write_text(pom)
    partial = directory / "lib.partial"
    shutil.rmtree(partial, ignore_errors=True)
    print(
        f"downloading {what} and its dependencies with Maven into {lib} (once; about a minute)",
        file=sys.stderr,
        flush=True,
    )
    command = ["mvn", "-q", "-B", "-f", str(directory / "pom.xml"), "dependency:copy-dependencies"]
    try:
        result = subprocess.run(
            [*command, f"-DoutputDirectory={partial}"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"downloading {what} with Maven failed: {exc}") from None
    if result.returncode != 0:
        plain = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
        errors = [line.split("[ERROR]", 1)[1].strip() for line in plain.splitlines() if "[ERROR]" in line]
        reason = next((error for error in errors if error), _last_error_line(result))
        raise RuntimeError(f"downloading {what} with Maven failed: {reason}")
    partial.rename(lib)
    return lib


def _cluster_id() -> str:
    """A random KRaft cluster id that never starts with '-' (the storage tool would read it as
    a flag), as Kafka's own Uuid.randomUuid() guarantees."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class BrokerOptions:
    port: int | None = None  # the SASL_PLAINTEXT listener; default: a free port
    # An open PLAINTEXT listener beside it (ANONYMOUS is a super user), like compose's default profile.
    plaintext_port: int | None = None
    admin_user: str = ADMIN_USER
    admin_password: str | None = None  # default: generated
    # What MSK's acl_bootstrap turns on: whatever no ACL mentions is allowed to everyone.
    allow_everyone_if_no_acl: bool = False
    # More SCRAM-SHA-512 users (name -> password), created with the storage, never super users.
    users: Mapping[str, str] = field(default_factory=dict)


def _server_properties(
    data: Path, port: int, controller_port: int, admin_password: str, options: BrokerOptions
) -> str:
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{options.admin_user}" password="{admin_password}";'
    )
    listeners = [f"SASL_PLAINTEXT://127.0.0.1:{port}"]
    if options.plaintext_port is not None:
        listeners.append(f"OPEN://127.0.0.1:{options.plaintext_port}")
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            f"listeners={','.join(listeners)},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners={','.join(listeners)}",
            "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,OPEN:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=SASL_PLAINTEXT",
            "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
            "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
            f"listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config={jaas}",
            f"listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config={jaas}",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            # The controller listener (and the OPEN one, when asked for) is loopback-only
            # PLAINTEXT: its principal is ANONYMOUS.
            f"super.users=User:{options.admin_user};User:ANONYMOUS",
            f"allow.everyone.if.no.acl.found={str(options.allow_everyone_if_no_acl).lower()}",
            "auto.create.topics.enable=false",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=3",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=3",
            "group.initial.rebalance.delay.ms=0",
            f"log.dirs={data}",
            "",
        ]
    )


def _prepare(work: Path, options: BrokerOptions) -> tuple[list[str], Broker]:
    """Write the broker's configuration, format its storage unless it holds data already; the
    command that starts it."""
    lib = fetch_kafka_jars()
    java = shutil.which("java") or "java"
    classpath = f"{lib}/*"
    admin_password = options.admin_password or secrets.token_urlsafe(18)
    identity = _storage_identity(work)
    port = options.port or _free_port()
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    properties = work / "server.properties"
    properties.write_text(_server_properties(data, port, identity.controller_port, admin_password, options))
    (work / "log4j2.properties").write_text(LOG4J2)
    logging = f"-Dlog4j2.configurationFile={work / 'log4j2.properties'}"
    if not (data / "meta.properties").is_file():
        users = {options.admin_user: admin_password, **options.users}
        scram = [
            arg
            for name, password in users.items()
            for mechanism in SCRAM_MECHANISMS
            for arg in ("--add-scram", _scram_entry(mechanism, name, password))
        ]
        storage = ["kafka.tools.StorageTool", "format", "-t", identity.cluster_id]
        formatted = subprocess.run(
            [java, "-cp", classpath, logging, *storage, "-c", str(properties), *scram],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if formatted.returncode != 0:
            raise RuntimeError(
                f"formatting the broker's storage in {data} failed: {_last_error_line(formatted)}"
            )
        identity.save(work)
    command = [java, "-Xms256m", "-Xmx768m", "-XX:+UseSerialGC", "-cp", classpath, logging]
    command += ["kafka.Kafka", str(properties)]
    broker = Broker(
        bootstrap=f"127.0.0.1:{port}",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        admin_user=options.admin_user,
        admin_password=admin_password,
        description=f"Apache Kafka {KAFKA_VERSION} (KRaft, SASL/SCRAM-SHA-512, StandardAuthorizer)",
    )
    return command, broker


@dataclass(frozen=True)
class StorageIdentity:
    """What must stay the same across restarts of a broker over the same data: the KRaft cluster
    id its storage was formatted with, and its controller's port (the quorum's address)."""

    cluster_id: str
    controller_port: int

    def save(self, work: Path) -> None:
        (work / IDENTITY_FILE).write_text(json.dumps(asdict(self), sort_keys=True) + "\n")


def _storage_identity(work: Path) -> StorageIdentity:
    saved = work / IDENTITY_FILE
    if (work / "data" / "meta.properties").is_file() and saved.is_file():
        return StorageIdentity(**json.loads(saved.read_text()))
    return StorageIdentity(cluster_id=_cluster_id(), controller_port=_free_port())


def _last_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The tool's own reason: its last line that is not a stack frame."""
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    reasons = [line for line in lines if not line.startswith("at ") and not line.startswith("...")]
    return reasons[-1] if reasons else f"exit code {result.returncode}"


def _scram_entry(mechanism: str, name: str, password: str) -> str:
    return f"{mechanism}=[name={name},password={password}]"


@contextmanager
def local_kafka(work: Path, options: BrokerOptions | None = None) -> Iterator[Broker]:
    """Start a single-node KRaft broker from the cached jars; stop it on exit."""
    command, broker = _prepare(work, options or BrokerOptions())
    log_path = work / "broker.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_ready(broker.client_config(), process.poll, log_path)
        yield broker
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Ask a child process to stop; kill it if it has not after ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class PortInUse(RuntimeError):
    """A port this broker needs is held by another process (another checkout's broker, say)."""


def port_holder(port: int) -> str | None:
    """What holds a local TCP port; None when it is free. A Kafka broker answering there is
    named by its cluster id."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
            return None
        except OSError:
            pass
    try:
        metadata = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}", "log_level": 0}).list_topics(
            timeout=3
        )
        return f"a Kafka broker with cluster id {metadata.cluster_id}"
    except Exception:
        return "another process"


def ports_in_use(ports: Iterable[int], holder: Callable[[int], str | None] | None = None) -> str:
    """'port P is in use by H; ...' for every taken port (all at once); '' when all are free."""
    find = holder or port_holder
    return "; ".join(f"port {port} is in use by {held}" for port in ports if (held := find(port)) is not None)


def saved_cluster_id(work: Path) -> str | None:
    """The cluster id of the broker whose data is in ``work`` (None before its first start)."""
    saved = work / IDENTITY_FILE
    return str(json.loads(saved.read_text())["cluster_id"]) if saved.is_file() else None


def start_detached(work: Path, options: BrokerOptions) -> Broker:
    """Start the broker in the background (it outlives this process); `stop_detached` ends it.
    Refuses (PortInUse) when a port it needs is taken, and waits for the broker that answers to
    be this one (its cluster id), never for whatever answers on the port."""
    if running_pid(work) is not None:
        raise RuntimeError(f"a broker from {work} is already running; stop it first")
    identity = _storage_identity(work)
    ports = [p for p in (options.plaintext_port, options.port, identity.controller_port) if p is not None]
    taken = ports_in_use(ports)
    if taken:
        raise PortInUse(
            f"{taken}, so the broker of {work} cannot start; stop what holds it (`make local-down` in its "
            "checkout) or give this stack other ports "
            "(kafka.local.external_bootstrap, secure_external_bootstrap in Pulumi.local.yaml)"
        )
    command, broker = _prepare(work, options)
    log_path = work / "broker.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    (work / PID_FILE).write_text(f"{process.pid}\n")
    # Over the open listener when there is one: the admin's stored password may be an older one
    # until the caller sets it again.
    ready_config = (
        {"bootstrap.servers": f"127.0.0.1:{options.plaintext_port}"}
        if options.plaintext_port is not None
        else broker.client_config()
    )
    try:
        wait_until_ready(ready_config, process.poll, log_path, cluster_id=saved_cluster_id(work))
    except Exception:
        stop_detached(work)
        raise
    return broker


def running_pid(work: Path, pid_name: str = PID_FILE) -> int | None:
    """The pid of the process `start_detached` (or another starter, by ``pid_name``) recorded
    in ``work``, if it still runs."""
    pid_file = work / pid_name
    if not pid_file.is_file():
        return None
    pid = int(pid_file.read_text().strip())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pid_file.unlink()
        return None
    return pid


def stop_detached(work: Path, timeout: float = 30, pid_name: str = PID_FILE) -> bool:
    """Stop a broker `start_detached` started (or another detached process, by ``pid_name``):
    SIGTERM, SIGKILL after ``timeout``; False when none was running."""
    pid = running_pid(work, pid_name)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running_pid(work, pid_name) is not None:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    if running_pid(work, pid_name) is not None:
        os.kill(pid, signal.SIGKILL)
    (work / pid_name).unlink(missing_ok=True)
    return True


def wait_until_ready(
    client_config: Mapping[str, str],
    exit_code: Callable[[], int | None],
    log: Path,
    timeout: float = 90,
    cluster_id: str | None = None,
) -> None:
    """Until the broker answers; with ``cluster_id``, only the broker of that cluster counts (a
    broker of another checkout on the same port is not this one)."""
    deadline = time.monotonic() + timeout
    # Quiet: until the broker listens, every attempt would log "connection refused".
    admin = AdminClient({**client_config, "log_level": 0})
    while time.monotonic() < deadline:
        code = exit_code()
        if code is not None:
            raise RuntimeError(f"Kafka exited with {code}: {_last_log_error(log)} (log: {log})")
        try:
            metadata = admin.list_topics(timeout=2)
            if metadata.brokers and cluster_id in (None, metadata.cluster_id):
                return
        except Exception:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"Kafka did not become ready in {timeout}s: {_last_log_error(log)} (log: {log})")


def _last_log_error(log: Path) -> str:
    """The broker's first error and the exception logged with it: the cause, where the last
    error is only "Exiting Kafka due to fatal exception"."""
    lines = log.read_text(errors="replace").splitlines()
    for index, line in enumerate(lines):
        if " ERROR " in line:
            message = line.split(" ERROR ", 1)[1].rsplit(" (", 1)[0]
            following = lines[index + 1] if index + 1 < len(lines) else ""
            if following and not following.startswith(("[", "\t", " ")):
                message += f": {following.strip()}"
            return message
    return "no error in its log"
