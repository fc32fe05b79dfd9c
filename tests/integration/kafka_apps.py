"""Real Kafka clients beyond produce/consume: a Kafka Streams application and a Kafka Connect
worker, run as a service with exactly its generated credentials.

Their jars come from Maven Central once (cached beside the broker's), and the apps
(`apps/*.java`: a Streams app, a keyed producer) are compiled with javac on first use.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from infra.live.kafka_broker import (
    KAFKA_VERSION,
    LOG4J,
    LOG4J2,
    LOG4J_VERSION,
    Broker,
    cache_dir,
    maven_jars,
    maven_pom,
)

APPS = Path(__file__).with_name("apps")
ARTIFACTS = ("kafka-streams", "connect-runtime", "connect-file", "connect-json")
POM = maven_pom(
    "integration-apps",
    [
        *(("org.apache.kafka", artifact, KAFKA_VERSION) for artifact in ARTIFACTS),
        (LOG4J, "log4j-slf4j2-impl", LOG4J_VERSION),
        (LOG4J, "log4j-core", LOG4J_VERSION),
    ],
)


def apps_dir() -> Path:
    return cache_dir().parent / f"kafka-apps-{KAFKA_VERSION}"


def classpath() -> str:
    """The client jars and the compiled apps (recompiled when a source changes)."""
    lib = maven_jars(apps_dir(), POM, f"kafka-streams-{KAFKA_VERSION}.jar")
    sources = sorted(APPS.glob("*.java"))
    digest = hashlib.sha256(b"".join(source.read_bytes() for source in sources)).hexdigest()[:16]
    classes = apps_dir() / "classes" / digest
    if not all((classes / f"{source.stem}.class").exists() for source in sources):
        partial = classes.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        subprocess.run(
            ["javac", "-cp", f"{lib}/*", "-d", str(partial), *map(str, sources)], check=True, timeout=300
        )
        partial.rename(classes)
    return f"{lib}/*:{classes}"


def client_properties(broker: Broker, user: str, password: str) -> dict[str, str]:
    properties = {"bootstrap.servers": broker.bootstrap, "security.protocol": broker.security_protocol}
    if broker.security_protocol.startswith("SASL"):
        module = (
            "org.apache.kafka.common.security.plain.PlainLoginModule"
            if broker.sasl_mechanism == "PLAIN"
            else "org.apache.kafka.common.security.scram.ScramLoginModule"
        )
        properties |= {
            "sasl.mechanism": broker.sasl_mechanism,
            "sasl.jaas.config": f'{module} required username="{user}" password="{password}";',
        }
    return properties


def write_properties(path: Path, properties: dict[str, str]) -> Path:
    path.write_text("".join(f"{key}={value}\n" for key, value in sorted(properties.items())))
    return path


@dataclass
class JavaProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def exited(self) -> int | None:
        return self.process.poll()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def java(work: Path, main_class: str, *args: str) -> Iterator[JavaProcess]:
    log4j = work / "log4j2.properties"
    log4j.write_text(LOG4J2)
    log = work / f"{main_class.rsplit('.', 1)[-1]}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                "java",
                "-Xmx384m",
                f"-Dlog4j2.configurationFile={log4j}",
                "-cp",
                classpath(),
                main_class,
                *args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = JavaProcess(process, log)
    try:
        yield running
    finally:
        running.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rest(url: str, body: dict[str, object] | None = None, method: str = "GET") -> tuple[int, object]:
    """A call to the Connect REST API: (status, parsed body); status 0 when nothing listens."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, None


def wait_for(condition: Callable[[], object], timeout: float, interval: float = 0.5) -> bool:
    """Poll ``condition`` (a callable returning a truthy value) until it holds or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False
