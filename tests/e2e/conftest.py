from __future__ import annotations

import os
from pathlib import Path

import pytest

from infra.live.kafka_broker import Broker
from tests.conftest import skip_unless_required
from tests.e2e.engine import EngineProject, missing_binaries

# .ci/run sets this where Go, Java and Maven exist, so the life cycle can never skip silently.
REQUIRE_ENGINE = os.environ.get("KAFKA_PLATFORM_REQUIRE_ENGINE") == "1"


@pytest.fixture(scope="session")
def engine_ready() -> None:
    missing = missing_binaries()
    if missing:
        reason = f"the real engine is not built ({', '.join(missing)} missing): run `make engine` (needs Go)"
        skip_unless_required(reason, REQUIRE_ENGINE)


@pytest.fixture
def engine_project(engine_ready: None, broker: Broker, tmp_path: Path) -> EngineProject:
    return EngineProject(tmp_path / "project", broker)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)
