"""A new team's path, as the README's "make it yours" step writes it: `init` a shop (checkout
publishes orders keyed by order id, billing turns orders into payments, mailer reads payments)
over the example, `make local` without Docker, then each service produces and consumes with
exactly what `kafka-platform env --stack local --host --secure --service <name>` gives it, and
no service reaches another's topic."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Message, Producer

from infra.live.kafka_broker import Broker, missing_tools
from tests.eventually import eventually
from tests.integration import access_checks as check
from tests.integration.test_local_without_docker import cli, exported, free_port, on_local_ports
from tests.integration.test_quick_start import quick_start_snippet, run_snippet
from tests.project_files import REPO, Project


def readme_make_it_yours() -> list[list[str]]:
    """The commands of the README's block that runs `kafka-platform init`."""
    readme = (REPO / "README.md").read_text()
    blocks: list[str] = re.findall(r"```bash\n(.*?)```", readme, flags=re.DOTALL)
    block = next(block for block in blocks if "kafka-platform init" in block)
    return [shlex.split(line) for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def make_local_commands() -> list[list[str]]:
    """The Makefile's `local` recipe as CLI arguments, on the Java path (no Docker here)."""
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(r"^local: .*\n((?:\t.*\n)+)", makefile, flags=re.MULTILINE)
    assert recipe is not None
    commands = []
    for line in recipe.group(1).splitlines():
        args = shlex.split(line.strip().replace("$(STACK)", "local"))
        assert args[:3] == ["$(PY)", "-m", "infra"], line
        commands.append([*args[3:], *(["--runtime", "java"] if args[3:5] == ["local", "up"] else [])])
    return commands


def service_env(project: Project, service: str) -> dict[str, str]:
    printed = cli(project, "env", "--stack", "local", "--host", "--secure", "--service", service)
    assert printed.returncode == 0, printed.stderr
    return exported(printed.stdout)


def as_broker(env: dict[str, str]) -> Broker:
    """The service's own login, from its env alone."""
    return Broker(
        bootstrap=env["KAFKA_BROKER_URL"],
        security_protocol=env["KAFKA_SECURITY_PROTOCOL"],
        sasl_mechanism=env["KAFKA_SASL_MECHANISM"],
        admin_user=env["KAFKA_SASL_USERNAME"],
        admin_password=env["KAFKA_SASL_PASSWORD"],
        description=env["KAFKA_CLIENT_ID"],
    )


def produce(env: dict[str, str], topic: str, key: str, value: bytes) -> None:
    config = as_broker(env).client_config() | {
        "client.id": env["KAFKA_CLIENT_ID"],
        "partitioner": env["KAFKA_PARTITIONER"],
    }
    reports: list[object] = []
    producer = Producer(config)
    producer.produce(topic, value, key=key.encode(), on_delivery=lambda error, _m: reports.append(error))
    producer.flush(30)
    assert reports == [None], reports


def consume(env: dict[str, str], key: str) -> Message:
    """The first record with ``key`` on the topics the service consumes, in its own group."""
    consumer = Consumer(
        as_broker(env).client_config()
        | {"group.id": env["KAFKA_CONSUMER_GROUP"], "auto.offset.reset": "earliest"}
    )
    consumer.subscribe(env["KAFKA_CONSUME_TOPICS"].split(","))
    try:
        message: Message = eventually(
            lambda: consumer.poll(1.0),
            lambda m: m is not None and m.error() is None and m.key() == key.encode(),
            timeout=60,
            what=f"{env['KAFKA_CLIENT_ID']} reads key {key}",
        )
        consumer.commit(message=message, asynchronous=False)
        return message
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    if missing_tools():
        pytest.skip("needs Java and Maven")
    project = Project(tmp_path_factory.mktemp("new-team"))
    commands = readme_make_it_yours()
    init = next(command for command in commands if command[:2] == ["kafka-platform", "init"])
    assert ["make", "local"] in commands
    written = cli(project, *init[1:])
    assert written.returncode == 0, written.stderr
    assert "init: wrote topology.yaml (domain shop: 2 topics, 3 services, 1 event)" in written.stdout
    on_local_ports(project, free_port(), free_port())
    try:
        for command in make_local_commands():
            done = cli(project, *command)
            assert done.returncode == 0 and "Traceback" not in done.stderr, (command, done.stderr)
        # Without Docker too, `make local` keeps the committed compose mirror current for CI.
        assert cli(project, "compose", "--check").returncode == 0
        yield project
    finally:
        cli(project, "local", "reset", "--runtime", "java")


def test_the_three_services_pass_an_order_along_with_their_own_env(shop: Project) -> None:
    checkout, billing, mailer = (service_env(shop, name) for name in ("checkout", "billing", "mailer"))
    route = json.loads(checkout["MESSAGING_ROUTING"])["order.placed"]
    order_key = route["key"].format(order_id="o-42")
    produce(checkout, route["topic"], order_key, b'{"order_id": "o-42", "total": 1999}')

    order = consume(billing, order_key)
    assert order.topic() == "shop.orders" and order.value() == b'{"order_id": "o-42", "total": 1999}'
    produce(billing, billing["KAFKA_TOPIC_PAYMENTS"], order_key, b'{"order_id": "o-42", "paid": true}')

    payment = consume(mailer, order_key)
    assert payment.topic() == "shop.payments" and payment.value() == b'{"order_id": "o-42", "paid": true}'


def test_no_service_touches_another_services_topic(shop: Project) -> None:
    checkout, billing, mailer = (service_env(shop, name) for name in ("checkout", "billing", "mailer"))

    def login(env: dict[str, str]) -> tuple[Broker, str, str]:
        return as_broker(env), env["KAFKA_SASL_USERNAME"], env["KAFKA_SASL_PASSWORD"]

    assert not check.can_produce(*login(checkout), "shop.payments")
    assert not check.can_produce(*login(mailer), "shop.orders")
    assert not check.can_consume(*login(mailer), "shop.orders", mailer["KAFKA_CONSUMER_GROUP"])
    assert not check.can_consume(*login(checkout), "shop.payments", billing["KAFKA_CONSUMER_GROUP"])


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("checkout", ["produced to shop.orders"]),
        ("billing", ["produced to shop.payments", "consumer: "]),
        ("mailer", ["consumer: "]),
    ],
)
def test_the_readme_snippet_works_for_each_of_the_teams_services(
    shop: Project, service: str, expected: list[str]
) -> None:
    """The README says its produce/consume snippet works for each of a team's services after
    `init`: run as written, with only the service's name changed."""
    if not (shop.root / ".venv").exists():
        (shop.root / ".venv").symlink_to(REPO / ".venv")
    snippet = quick_start_snippet().replace("--service api", f"--service {service}")
    lines = run_snippet(snippet, shop)
    assert len(lines) == len(expected) and all(
        line.startswith(e) for line, e in zip(lines, expected, strict=True)
    ), lines
    assert not any("error" in line.lower() for line in lines), lines
