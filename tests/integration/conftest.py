from __future__ import annotations

from pathlib import Path

import pytest

from infra.live.kafka_broker import Broker
from infra.plan.model import Plan
from infra.plan.resolve import load_plan
from tests.broker_setup import deploy_plan
from tests.project_files import EXAMPLE


@pytest.fixture(scope="session")
def local_plan() -> Plan:
    return load_plan(EXAMPLE, "local")


@pytest.fixture(scope="session")
def applied(broker: Broker, local_plan: Plan) -> dict[str, str]:
    """The local plan applied to the broker; the services' generated passwords."""
    return deploy_plan(broker, local_plan)


@pytest.fixture(scope="session")
def integration_report() -> list[str]:
    return REPORT


@pytest.fixture(scope="session")
def routing_report() -> list[str]:
    return ROUTING_REPORT


@pytest.fixture(scope="session")
def migration_report() -> list[str]:
    return MIGRATION_REPORT


REPORT: list[str] = []
ROUTING_REPORT: list[str] = []
MIGRATION_REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for title, lines in (
        ("ACL matrix on a real broker", REPORT),
        ("Event routing on real Kafka and Redis", ROUTING_REPORT),
        ("Cluster migration on two real brokers", MIGRATION_REPORT),
    ):
        if lines:
            terminalreporter.section(title)
            for line in lines:
                terminalreporter.write_line(line)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.integration)
