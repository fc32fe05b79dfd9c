from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import hypothesis.internal.observability  # noqa: F401
import pytest

from infra.live.kafka_broker import Broker, broker_from_environment, local_kafka, missing_tools
from tests.integration.redis_server import redis_missing, redis_url
from tests.integration.schema_registry_server import registry_missing, schema_registry_url
from tests.project_files import EXAMPLE, REPO, Project

# Imported here, before any Pulumi mock runs: the hypothesis plugin otherwise imports it at the
# end of a session that never used hypothesis, and CPython 3.11's AST constructor can then fail
# with "recursion depth mismatch" (python/cpython#106905) while mock-runtime objects are being
# collected, turning a green run red.


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO


@pytest.fixture(scope="session")
def example_dir() -> Path:
    """The AURA360 example project (examples/aura360), which the tests exercise: the root's
    topology and stack files are the team's own once it ran `kafka-platform init`."""
    return EXAMPLE


# .ci/run sets this where Java and Maven exist, so the suite can never skip silently there.
REQUIRE_BROKER = os.environ.get("KAFKA_PLATFORM_REQUIRE_BROKER") == "1"


def skip_unless_required(reason: str, required: bool) -> None:
    """Skip for want of a tool, except where CI demands the test run: then fail."""
    if required:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    external = broker_from_environment()
    if external is not None:
        yield external
        return
    missing = missing_tools()
    if missing:
        reason = f"no KAFKA_BOOTSTRAP_SERVERS and {' and '.join(missing)} not installed to start Apache Kafka"
        skip_unless_required(reason, REQUIRE_BROKER)
    with local_kafka(tmp_path_factory.mktemp("kafka")) as started:
        yield started


# .ci/run sets this where redis-server is installed, so the routing tests never skip there.
REQUIRE_REDIS = os.environ.get("KAFKA_PLATFORM_REQUIRE_REDIS") == "1"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis (tests/integration/redis_server.py) for the routing, client and flip tests."""
    if redis_missing():
        skip_unless_required(
            "no REDIS_URL and no redis-server installed (`apt-get install redis-server`)", REQUIRE_REDIS
        )
    with redis_url(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def schema_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Confluent-compatible registry's API base URL (tests/integration/schema_registry_server.py),
    one per session; the tests keep to subjects of their own."""
    missing = registry_missing()
    if missing:
        reason = (
            f"no SCHEMA_REGISTRY_URL and {' and '.join(missing)} not installed to start Apicurio Registry"
        )
        skip_unless_required(reason, REQUIRE_BROKER)
    with schema_registry_url(tmp_path_factory.mktemp("schema-registry")) as url:
        yield url
