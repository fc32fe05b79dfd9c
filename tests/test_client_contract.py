"""The env contract has three copies that must agree: docs/env-contract.md (for other languages),
the plan's env (what services receive) and the client's settings (what the Python client reads).
Every service of the example stacks must start with its env, and a broken env must fail at
start-up naming the variable."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import kafka_platform_client
import pytest
from kafka_platform_client.settings import TOPIC_FAMILY, TOPIC_PREFIX, ClientSettings, ContractError
from kafka_platform_client.testing import RecordingPublisher

from infra.plan.messaging_connections import CELERY_BROKER_URL_ENV, REDIS_URL_ENV
from infra.plan.model import (
    SASL_PASSWORD_ENV,
    SASL_USERNAME_ENV,
    SCHEMA_REGISTRY_PASSWORD_ENV,
    SCHEMA_REGISTRY_USERNAME_ENV,
    Plan,
    ServicePlan,
)
from infra.plan.resolve import load_plan
from tests.project_files import (
    ENCRYPTED,
    EXAMPLE,
    REPO,
    Project,
    add_streams_and_connect,
    existing_cluster_stack_file,
    with_schema_registry_password,
)
from tests.test_event_schemas import MOOD, record, with_schema

CONTRACT_PAGE = REPO / "docs" / "env-contract.md"
VIBESTREAM = REPO / "examples" / "vibestream"


def documented_variables() -> dict[str, list[str]]:
    """The page's table of variables: variable -> its other cells."""
    section = CONTRACT_PAGE.read_text().split("## The variables\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_<>]+)` \|(.*)\|$", section, flags=re.MULTILINE)
    return {name: [cell.strip() for cell in rest.split(" | ")] for name, rest in rows}


def example_plans(root: Path) -> dict[str, Plan]:
    """Every example stack, plus one project with the service kinds and options the examples
    lack (Streams, Connect, per-instance groups, a Celery flip)."""
    plans = {f"aura360 {stack}": load_plan(EXAMPLE, stack) for stack in ("local", "dev", "prod")}
    vibestream = shutil.copytree(VIBESTREAM, root / "vibestream")
    prod = vibestream / "Pulumi.prod.yaml"  # as its team has it once the Redis URL is set
    prod.write_text(
        prod.read_text().replace(
            "config:\n", f"config:\n  kafka-platform:redisUrl:\n    secure: {ENCRYPTED}\n", 1
        )
    )
    plans |= {f"vibestream {stack}": load_plan(vibestream, stack) for stack in ("local", "prod")}

    def kinds(topology: dict[str, Any]) -> None:
        add_streams_and_connect(topology)
        topology["services"]["guardian"]["consumer_group_per_instance"] = True

    (root / "kinds").mkdir()
    project = Project(root / "kinds").edit_topology(kinds)
    project.edit_settings("local", lambda s: s["messaging"].update(backend="celery"))
    plans["kinds and celery"] = project.plan("local")
    (root / "registry").mkdir()
    registry = with_schema(Project(root / "registry"), record(MOOD, name="MoodCreated"))
    registry.write("Pulumi.staging.yaml", with_schema_registry_password(existing_cluster_stack_file()))
    registry.edit_settings(
        "staging",
        lambda s: s.update(
            schemas={"registry": {"url": "https://registry.internal", "username": "platform"}}
        ),
    )
    plans["schemas in a registry"] = registry.plan("staging")
    return plans


def contract_names(service: ServicePlan) -> set[str]:
    names = {*service.env, *service.secret_env}
    return {TOPIC_FAMILY if name.startswith(TOPIC_PREFIX) else name for name in names}


def deployed_env(plan: Plan, service: ServicePlan) -> dict[str, str]:
    """What the pod sees: the ConfigMap's values, the Secret's filled in, the bootstrap known."""
    secrets = {
        SASL_USERNAME_ENV: service.principal,
        SASL_PASSWORD_ENV: "generated-by-the-platform",  # pragma: allowlist secret
        REDIS_URL_ENV: "rediss://:from-the-secret@redis.internal:6380/0",  # pragma: allowlist secret
        CELERY_BROKER_URL_ENV: "amqps://app:from-the-secret@mq.internal:5671/app",  # pragma: allowlist secret
        SCHEMA_REGISTRY_USERNAME_ENV: "platform",
        SCHEMA_REGISTRY_PASSWORD_ENV: "from-the-secret",  # pragma: allowlist secret
    }
    env = service.env | {key: secrets[key] for key in service.secret_env}
    if env["KAFKA_BROKER_URL"].startswith("${"):  # known after deployment
        env["KAFKA_BROKER_URL"] = "pkc-abc12.us-east-1.aws.confluent.cloud:9092"
    return env


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Plan]:
    return example_plans(tmp_path_factory.mktemp("kinds"))


def test_the_page_the_plan_and_the_client_name_the_same_variables(plans: dict[str, Plan]) -> None:
    planned = {
        name for plan in plans.values() for service in plan.services for name in contract_names(service)
    }
    documented = documented_variables()
    assert set(documented) == planned, "docs/env-contract.md lists exactly what the plan gives services"
    assert set(ClientSettings.variables()) == planned, "the client reads exactly what the plan gives services"
    assert all(len(cells) == 3 and all(cells) for cells in documented.values()), "who, format, meaning"


def test_secret_variables_are_documented_as_coming_from_the_secret(plans: dict[str, Plan]) -> None:
    secret = {name for plan in plans.values() for service in plan.services for name in service.secret_env}
    documented = documented_variables()
    assert secret == {
        SASL_USERNAME_ENV,
        SASL_PASSWORD_ENV,
        REDIS_URL_ENV,
        SCHEMA_REGISTRY_USERNAME_ENV,
        SCHEMA_REGISTRY_PASSWORD_ENV,
    }
    assert all("Secret" in " ".join(documented[name]) for name in (*secret, CELERY_BROKER_URL_ENV))


def test_every_service_of_every_example_stack_starts_with_its_env(plans: dict[str, Plan]) -> None:
    for label, plan in plans.items():
        for service in plan.services:
            settings = ClientSettings.from_env(deployed_env(plan, service))
            routing = {
                name: route.model_dump(exclude_none=True)
                for name, route in settings.messaging_routing.items()
            }
            assert routing == json.loads(service.env["MESSAGING_ROUTING"]), (label, service.name)
            assert settings.messaging_backend == service.env["MESSAGING_BACKEND"], (label, service.name)
            assert settings.kafka_partitioner == "murmur2_random"
            assert {f"{TOPIC_PREFIX}{key}" for key in settings.kafka_topics} == {
                name for name in service.env if name.startswith(TOPIC_PREFIX)
            }


def test_the_dev_stacks_dual_write_has_its_celery_broker() -> None:
    """Dual write sends every event to Celery too: a stack with it and no broker is refused by
    `validate` (tests/test_validation.py), so the client never meets one."""
    api = load_plan(EXAMPLE, "dev").service("api")
    settings = ClientSettings.from_env(deployed_env(load_plan(EXAMPLE, "dev"), api))
    assert settings.messaging_dual_write
    assert settings.celery_broker_url is not None


def local_api_env() -> dict[str, str]:
    plan = load_plan(EXAMPLE, "local")
    return deployed_env(plan, plan.service("api"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"KAFKA_PARTITIONER": None},
            "KAFKA_PARTITIONER: missing; expected a librdkafka partitioner name (the platform sets "
            "murmur2_random)",
        ),
        (
            {"MESSAGING_BACKEND": "rabbit"},
            "MESSAGING_BACKEND: Input should be 'kafka', 'celery' or 'disabled'",
        ),
        ({"MESSAGING_DUAL_WRITE": "yes"}, "MESSAGING_DUAL_WRITE: 'yes' is neither true nor false"),
        ({"MESSAGING_ROUTING": "{not json"}, "MESSAGING_ROUTING: not JSON"),
        (
            {"MESSAGING_ROUTING": '{"user.mood.created": {"transport": "both", "topic": "t"}}'},
            "MESSAGING_ROUTING at user.mood.created: transport 'both' needs a channel",
        ),
        ({"KAFKA_BROKER_URL": "redpanda"}, "KAFKA_BROKER_URL: 'redpanda' is not host:port"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
            "KAFKA_SASL_MECHANISM: missing; KAFKA_SECURITY_PROTOCOL is SASL_SSL",
        ),
        ({"MESSAGING_BACKEND": "celery"}, "CELERY_BROKER_URL: missing; MESSAGING_BACKEND is celery"),
        ({"MESSAGING_DUAL_WRITE": "true"}, "CELERY_BROKER_URL: missing; MESSAGING_DUAL_WRITE=true"),
        (
            {"CELERY_BROKER_URL": "http://mq:80"},
            "CELERY_BROKER_URL: a URL of another kind (expected a redis://, rediss://, amqp://",
        ),
        (
            {"SCHEMA_REGISTRY_URL": "https://registry.internal", "SCHEMA_REGISTRY_USERNAME": "platform"},
            "SCHEMA_REGISTRY_PASSWORD: missing; SCHEMA_REGISTRY_USERNAME is set",
        ),
        (
            {"SCHEMA_REGISTRY_URL": "https://platform:hunter2@registry.internal"},  # pragma: allowlist secret
            "SCHEMA_REGISTRY_URL: not an http:// or https:// URL without a credential",
        ),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else "",
)
def test_a_broken_env_fails_at_start_up_naming_the_variable(
    change: dict[str, str | None], message: str
) -> None:
    env = {key: value for key, value in (local_api_env() | change).items() if value is not None}
    with pytest.raises(ContractError) as raised:
        ClientSettings.from_env(env)
    assert message in str(raised.value)
    assert "hunter2" not in str(raised.value)


def test_a_secret_never_shows_in_the_settings() -> None:
    env = local_api_env() | {
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "KAFKA_SASL_USERNAME": "aura360.local.api",
        "KAFKA_SASL_PASSWORD": "hunter2",  # pragma: allowlist secret
    }
    settings = ClientSettings.from_env(env)
    assert "hunter2" not in repr(settings)
    assert settings.sasl["sasl.password"] == "hunter2"  # pragma: allowlist secret


def test_the_client_is_versioned_with_the_platform() -> None:
    platform = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    client = tomllib.loads((REPO / "client" / "pyproject.toml").read_text())["project"]
    assert client["version"] == platform["version"] == kafka_platform_client.__version__
    assert client["name"] not in " ".join(platform["dependencies"]), "the platform never needs the client"
    assert {dependency.split(">")[0] for dependency in client["dependencies"]} == {
        "confluent-kafka",
        "pydantic-settings",
    }
    assert set(client["optional-dependencies"]) == {"redis", "celery"}


def test_a_services_own_backend_in_the_stack_settings_is_what_its_client_publishes_to(tmp_path: Path) -> None:
    """`messaging.services.<name>` in Pulumi.<stack>.yaml, through the plan's env, to the client:
    the api falls back to Celery alone, the guardian dual-writes, the rest stay on Kafka."""

    def per_service(settings: dict[str, Any]) -> None:
        settings["messaging"].update(
            celery_broker={"url": "redis://celery.internal:6379/1"},
            services={"api": {"backend": "celery"}, "guardian": {"dual_write": True}},
        )

    plan = Project(tmp_path).edit_settings("local", per_service).plan("local")
    published = {}
    for service, event in (
        ("api", "user.mood.created"),
        ("guardian", "guardian.responded"),
        ("context-vectorizer", "context.vectorized"),
    ):
        publisher = RecordingPublisher(ClientSettings.from_env(deployed_env(plan, plan.service(service))))
        payload = {"user_id": "u-1", "correlation_id": "c-1", "id": "e-1"}
        published[service] = publisher.publish(event, payload).delivered
    assert published == {
        "api": ("celery",),
        "guardian": ("kafka", "celery"),
        "context-vectorizer": ("kafka",),
    }
