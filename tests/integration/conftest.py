from __future__ import annotations

from pathlib import Path

import pytest

from infra.apply_plan import apply_plan
from infra.kafka_broker import Broker
from infra.plan import load_plan
from infra.plan_model import Plan
from tests.project_files import REPO


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
