"""The local stack's Schema Registry on the path without Docker: Apicurio Registry, started beside
the Java broker by tools/schema-registry/run-registry (fetched once from Maven Central and cached
under ~/.cache/kafka-platform/; it needs Java 21+, and installs a runtime there where none is
found) when the plan has subjects. It keeps its subjects in memory: every start is empty and
`local up` registers the plan's subjects in it through the one registry core.

Its Confluent-compatible API is Apicurio's ccompat one: the plan's `host_url` followed by
APICURIO_CCOMPAT_PATH, where the compose mirror's Redpanda serves it at `host_url` itself.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from infra.live.kafka_broker import ports_in_use, running_pid
from infra.live.schema_registry import RegistryError, RegistryLogin, RegistryUnreachable, SchemaRegistry
from infra.plan.model import APICURIO_CCOMPAT_PATH, Plan

RUN_REGISTRY = Path(__file__).resolve().parents[2] / "tools" / "schema-registry" / "run-registry"
PORT_FILE = "registry.port"
# A first start downloads the distribution (~150 MB) and, without Java 21+, a Java runtime.
START_DEADLINE_S = 300
HEALTH_PORT_OFFSET = 1000  # run-registry's default management (health) port: the API's + 1000


class RegistryNotStarted(RuntimeError):
    """run-registry could not start Apicurio (no Java 21+ to be had, no Maven, a port taken)."""


def registry_port(plan: Plan) -> int | None:
    """The host port of the local registry the plan names; None when the plan has no subjects."""
    registry = plan.schema_registry
    if registry is None or registry.host_url is None:
        return None
    return urlsplit(registry.host_url).port


def registry_ports(port: int) -> list[int]:
    return [port, port + HEALTH_PORT_OFFSET]


def running_port(work: Path) -> int | None:
    """The port this checkout's registry listens on, if it runs."""
    saved = work / PORT_FILE
    if not saved.is_file():
        return None
    port = int(saved.read_text())
    return port if running_pid(work, f"registry-{port}.pid") is not None else None


def running_url(work: Path) -> str | None:
    """The Confluent-compatible API of this checkout's running registry, if one runs."""
    port = running_port(work)
    return None if port is None else f"http://localhost:{port}{APICURIO_CCOMPAT_PATH}"


def taken_ports(work: Path, port: int) -> str:
    """'port P is in use by H' for the ports a start on ``port`` needs ('' when free or ours)."""
    return "" if running_port(work) == port else ports_in_use(registry_ports(port))


def start(work: Path, port: int) -> bool:
    """Start Apicurio on ``port`` unless this checkout's runs there already (False then); one on
    another port is stopped first. RegistryNotStarted says why it could not start."""
    running = running_port(work)
    if running == port:
        return False
    if running is not None:
        stop(work)
    work.mkdir(parents=True, exist_ok=True)
    started = subprocess.run(
        [str(RUN_REGISTRY), "--port", str(port), "--state", str(work), "--deadline", str(START_DEADLINE_S)],
        capture_output=True,
        text=True,
        timeout=START_DEADLINE_S + 60,
        check=False,
    )
    if started.returncode != 0:
        said = [line for line in started.stderr.splitlines() if line.startswith("run-registry:")]
        raise RegistryNotStarted(said[-1] if said else started.stderr.strip()[-300:])
    (work / PORT_FILE).write_text(f"{port}\n")
    return True


def stop(work: Path) -> bool:
    """Stop this checkout's registry (its subjects go with it); False when none was running."""
    port = running_port(work)
    (work / PORT_FILE).unlink(missing_ok=True)
    if port is None:
        return False
    subprocess.run(
        [str(RUN_REGISTRY), "stop", "--port", str(port), "--state", str(work)],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return True


def register_subjects(url: str, plan: Plan) -> list[str]:
    """Each subject's level, then its schema, in the plan's order; what was done, by subject.
    A registry that refuses one (a new version its level does not allow) is said in its line."""
    registry = SchemaRegistry(RegistryLogin(url=url))
    lines = []
    for subject in plan.subjects:
        try:
            registry.set_compatibility(subject.subject, subject.compatibility)
            schema_id = registry.register(subject.subject, subject.definition, level=subject.compatibility)
        except (RegistryError, RegistryUnreachable) as refused:
            lines.append(f"warning: {refused}")
            continue
        lines.append(f"subject {subject.subject}: {subject.compatibility}, schema id {schema_id}")
    return lines
