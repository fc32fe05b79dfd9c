from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.live.kafka_broker import Broker
from tests.conftest import skip_unless_required
from tests.e2e.engine import ENGINE_BIN, EngineProject, missing_binaries
from tests.kubernetes_cluster import ControlPlane, control_plane
from tests.kubernetes_cluster import missing_binaries as missing_control_plane

# .ci/run sets this where Go, Java and Maven exist, so the life cycle can never skip silently.
REQUIRE_ENGINE = os.environ.get("KAFKA_PLATFORM_REQUIRE_ENGINE") == "1"
# ... and this where the Kubernetes half is built.
REQUIRE_KUBERNETES = os.environ.get("KAFKA_PLATFORM_REQUIRE_KUBERNETES") == "1"


@pytest.fixture(scope="session")
def engine_ready() -> None:
    missing = missing_binaries()
    if missing:
        reason = f"the real engine is not built ({', '.join(missing)} missing): run `make engine` (needs Go)"
        skip_unless_required(reason, REQUIRE_ENGINE)


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A Kubernetes control plane on loopback (tests/kubernetes_cluster.py), one per test module."""
    missing = missing_control_plane()
    if not (ENGINE_BIN / "pulumi-resource-kubernetes").exists():
        missing.append("pulumi-resource-kubernetes")
    if missing:
        skip_unless_required(
            f"the Kubernetes control plane is not built ({', '.join(missing)}): run `make kubernetes`",
            REQUIRE_KUBERNETES,
        )
    with control_plane(tmp_path_factory.mktemp("control-plane")) as started:
        yield started


@pytest.fixture
def engine_project(engine_ready: None, broker: Broker, tmp_path: Path) -> EngineProject:
    return EngineProject(tmp_path / "project", broker)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)
