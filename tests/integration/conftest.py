from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.apply_plan import apply_plan
from infra.cli import load_plan
from infra.kafka_broker import Broker, broker_from_environment, local_kafka, missing_tools
from infra.plan import Plan
from tests.project_files import REPO

# .ci/run sets this where Java and Maven exist, so the suite can never skip silently there.
REQUIRE_BROKER = os.environ.get("KAFKA_PLATFORM_REQUIRE_BROKER") == "1"


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    external = broker_from_environment()
    if external is not None:
        yield external
        return
    missing = missing_tools()
    if missing:
        reason = f"no KAFKA_BOOTSTRAP_SERVERS and {' and '.join(missing)} not installed to start Apache Kafka"
        if REQUIRE_BROKER:
            pytest.fail(reason)
        pytest.skip(reason)
    with local_kafka(tmp_path_factory.mktemp("kafka")) as started:
        yield started


@pytest.fixture(scope="session")
def local_plan() -> Plan:
    return load_plan(REPO, "local")


@pytest.fixture(scope="session")
def applied(broker: Broker, local_plan: Plan) -> dict[str, str]:
    """The local plan applied to the broker; the services' generated passwords."""
    return apply_plan(broker.admin(), local_plan, broker.sasl_mechanism)


@pytest.fixture(scope="session")
def integration_report() -> list[str]:
    return REPORT


REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("ACL matrix on a real broker")
        for line in REPORT:
            terminalreporter.write_line(line)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.integration)
