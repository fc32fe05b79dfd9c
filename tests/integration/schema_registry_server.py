"""A real Confluent-compatible Schema Registry for the registry tests: `SCHEMA_REGISTRY_URL`
when set (any registry speaking the API, e.g. Confluent's on a laptop), else Apicurio Registry
started by the project's own tools/schema-registry/run-registry on free ports (fetched once and
cached under ~/.cache/kafka-platform/; it needs Java 21+, or installs a runtime there)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.integration.kafka_apps import free_port
from tests.project_files import REPO

RUN_REGISTRY = REPO / "tools" / "schema-registry" / "run-registry"
# A cold first run downloads ~150 MB; a cached start takes about 5 s.
START_DEADLINE_S = 300


def registry_missing() -> list[str]:
    """What this machine lacks to start the registry (nothing when SCHEMA_REGISTRY_URL is set)."""
    if os.environ.get("SCHEMA_REGISTRY_URL"):
        return []
    return [tool for tool in ("java", "mvn") if shutil.which(tool) is None]


@contextmanager
def schema_registry_url(state: Path) -> Iterator[str]:
    given = os.environ.get("SCHEMA_REGISTRY_URL")
    if given:
        yield given
        return
    port, management = free_port(), free_port()
    options = ["--port", str(port), "--mgmt-port", str(management), "--state", str(state)]
    started = subprocess.run(
        [str(RUN_REGISTRY), *options, "--deadline", str(START_DEADLINE_S)],
        capture_output=True,
        text=True,
        timeout=START_DEADLINE_S + 60,
        check=False,
    )
    if started.returncode != 0:
        raise RuntimeError(f"run-registry failed:\n{started.stderr}")
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(RUN_REGISTRY), "stop", *options], capture_output=True, timeout=60, check=False)
