"""`kafka-platform init`: a team's own topology and stack files, valid for every provider choice,
never over existing files without --force, bad flags named, the same flags giving the same bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.cli import main
from infra.model.errors import ConfigError
from infra.model.settings import ConfluentSettings
from infra.plan.resolve import load_plan
from tests.project_files import REPO, Project, with_admin_password

SHOP = (
    "--domain",
    "shop",
    "--topic",
    "orders=checkout:billing",
    "--topic",
    "payments=billing:mailer",
    "--event",
    "order.placed=orders:order_id",
)
MSK = ("--subnets", "subnet-0a1,subnet-0b2,subnet-0c3", "--security-groups", "sg-0a1")
EXISTING = ("--bootstrap", "kafka-0.internal:9093,kafka-1.internal:9093", "--admin-user", "platform-admin")
WRITTEN = ("topology.yaml", "Pulumi.local.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml")


def kafka_platform(project: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The CLI in-process: (exit code, stdout, stderr); argparse's own refusals exit too."""
    try:
        code = main(["--project-dir", str(project), *args])
    except SystemExit as exited:
        code = int(exited.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(root: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(root.iterdir()) if path.is_file()}


def set_admin_password(project: Project, stack: str) -> None:
    path = project.root / f"Pulumi.{stack}.yaml"
    path.write_text(with_admin_password(path.read_text()))


@pytest.mark.parametrize(
    ("dev", "prod", "flags"),
    [
        ("confluent", "confluent", ()),
        ("msk", "msk", MSK),
        ("kafka", "kafka", EXISTING),
        ("confluent", "msk", MSK),
        ("kafka", "confluent", EXISTING),
    ],
)
def test_every_provider_choice_gives_files_that_validate_and_render(
    project: Project, capsys: pytest.CaptureFixture[str], dev: str, prod: str, flags: tuple[str, ...]
) -> None:
    code, out, err = kafka_platform(
        project.root, capsys, "init", *SHOP, "--dev", dev, "--prod", prod, *flags, "--force"
    )
    assert code == 0, err
    assert err == "", "no warnings: the files are exactly what validate accepts"
    assert ("pr-<n> previews need a Confluent dev stack" in out) == (dev == "msk")
    for stack in ("dev", "prod"):
        if {"dev": dev, "prod": prod}[stack] == "kafka":
            # The admin's password is the one value init cannot write; validate names it.
            with pytest.raises(ConfigError) as refused:
                project.plan(stack)
            assert [problem.path for problem in refused.value.problems] == [
                ("config", "kafka-platform:kafkaAdminPassword")
            ]
            assert f"pulumi config set --stack {stack} --secret kafka-platform:kafkaAdminPassword" in out
            set_admin_password(project, stack)

    code, out, err = kafka_platform(project.root, capsys, "validate")
    assert code == 0, err
    assert out.splitlines() == [
        f"ok  dev: 2 topics, 3 principals, 6 ACLs ({dev})",
        "ok  local: 2 topics, 3 principals, 6 ACLs (local)",
        f"ok  prod: 2 topics, 3 principals, 6 ACLs ({prod})",
    ]
    assert kafka_platform(project.root, capsys, "compose")[0] == 0
    assert kafka_platform(project.root, capsys, "compose", "--check")[0] == 0
    compose = (project.root / "docker-compose.kafka.yml").read_text()
    assert "shop.orders" in compose and "aura360" not in compose


def test_the_plan_grants_each_service_exactly_its_topics(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = kafka_platform(
        project.root, capsys, "init", *SHOP, "--dev", "confluent", "--prod", "confluent", "--force"
    )
    assert code == 0, err
    for stack in ("local", "dev", "prod"):
        plan = load_plan(project.root, stack)
        acls = {(acl.service, acl.operation, acl.resource_name) for acl in plan.acls}
        assert acls == {
            ("checkout", "WRITE", "shop.orders"),
            ("billing", "READ", "shop.orders"),
            ("billing", "READ", "shop.billing"),
            ("billing", "WRITE", "shop.payments"),
            ("mailer", "READ", "shop.payments"),
            ("mailer", "READ", "shop.mailer"),
        }
    checkout = load_plan(project.root, "local").service("checkout")
    assert json.loads(checkout.env["MESSAGING_ROUTING"]) == {
        "order.placed": {
            "key": "{order_id}",
            "topic": "shop.orders",
            "transport": "kafka",
            "queues": ["shop.billing"],
        }
    }
    topology = (project.root / "topology.yaml").read_text()
    assert "orders: {partitions: 3, retention: 7d, key: order_id}" in topology
    assert "api" not in topology and "aura360" not in (project.root / "Pulumi.dev.yaml").read_text()


def test_it_prints_what_it_wrote_and_what_to_run_next(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write("Pulumi.staging.yaml", (REPO / "examples" / "Pulumi.existing-cluster.yaml").read_text())
    code, out, _ = kafka_platform(
        project.root, capsys, "init", *SHOP, "--dev", "confluent", "--prod", "msk", *MSK, "--force"
    )
    assert code == 0
    assert out.splitlines() == [
        "init: wrote topology.yaml (domain shop: 2 topics, 3 services, 1 event)",
        "init: wrote Pulumi.local.yaml (the local Kafka)",
        "init: wrote Pulumi.dev.yaml (Confluent Cloud AWS us-east-1, basic)",
        "init: wrote Pulumi.prod.yaml (AWS MSK, 3 x kafka.m5.large)",
        "init: left alone Pulumi.staging.yaml: still the old topology's; edit or delete it",
        "next:",
        "  kafka-platform validate",
        "  make local",
        '  eval "$(kafka-platform env --stack local --host --secure --service checkout)"',
    ]


def test_existing_files_are_refused_without_force_and_nothing_changes(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(project.root)
    code, out, err = kafka_platform(
        project.root, capsys, "init", *SHOP, "--dev", "confluent", "--prod", "confluent"
    )
    assert code == 2
    assert err.startswith(
        "init: topology.yaml, Pulumi.local.yaml, Pulumi.dev.yaml, Pulumi.prod.yaml already exist in "
    )
    assert "pass --force to replace them" in err
    assert out == ""
    assert snapshot(project.root) == before


def test_one_existing_file_is_enough_to_refuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Pulumi.yaml").write_bytes((REPO / "Pulumi.yaml").read_bytes())
    (tmp_path / "Pulumi.prod.yaml").write_text("config: {}\n")
    code, _, err = kafka_platform(
        tmp_path, capsys, "init", *SHOP, "--dev", "confluent", "--prod", "confluent"
    )
    assert code == 2 and "init: Pulumi.prod.yaml already exist" in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["Pulumi.prod.yaml", "Pulumi.yaml"]


BAD_FLAGS = [
    (("--domain", "Shop"), "--domain 'Shop': 'Shop' must be lower-case"),
    (("--topic", "orders"), "argument --topic: 'orders' is not <topic>=<producers>:<consumers>"),
    (
        ("--topic", "orders=Checkout:billing"),
        "argument --topic: 'orders=Checkout:billing': service name 'Checkout'",
    ),
    (
        ("--topic", "orders=:"),
        "argument --topic: 'orders=:': name a producer or a consumer of topic 'orders'",
    ),
    (
        ("--topic", "order.s=a:b", "--topic", "order_s=c:d"),
        "--topic 'order_s': collides with topic 'order.s'",
    ),
    (("--topic", "o=platform-admin:b"), "'platform-admin' is the platform's own identity"),
    (("--event", "paid=payments:id"), "--event 'paid=payments:id': no --topic 'payments'; topics: orders"),
    (("--event", "placed=orders:order id"), "argument --event: 'placed=orders:order id': the key 'order id'"),
    (("--dev", "aws"), "argument --dev: invalid choice: 'aws'"),
    (("--dev", "msk"), "--dev msk: needs --subnets"),
    (("--dev", "msk", "--subnets", "subnet-a"), "argument --subnets: 'subnet-a': give 2 to 3 subnet ids"),
    (
        ("--dev", "msk", "--subnets", "net-a,net-b"),
        "argument --subnets: 'net-a,net-b': 'net-a' is not a subnet id",
    ),
    (
        ("--subnets", "subnet-a,subnet-b"),
        "--subnets 'subnet-a,subnet-b': only for msk (dev is confluent, prod is confluent)",
    ),
    (("--prod", "kafka", "--admin-user", "admin"), "--prod kafka: needs --bootstrap"),
    (
        ("--prod", "kafka", "--bootstrap", "kafka:x", "--admin-user", "a"),
        "argument --bootstrap: 'kafka:x': 'kafka:x' is not a host:port",
    ),
    (
        ("--region", "prod=eu-west-1", "--region", "prod=eu-west-2"),
        "--region 'prod=eu-west-2': prod is given twice",
    ),
    (("--cloud", "IBM"), "argument --cloud: 'IBM': not one of AWS, GCP, AZURE"),
    (
        ("--confluent-cluster", "lkc-1"),
        "argument --confluent-cluster: 'lkc-1': not <environment id>/<cluster id>",
    ),
]


@pytest.mark.parametrize(("flags", "message"), BAD_FLAGS, ids=[" ".join(flags) for flags, _ in BAD_FLAGS])
def test_a_bad_flag_exits_2_naming_it_with_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: tuple[str, ...], message: str
) -> None:
    (tmp_path / "Pulumi.yaml").write_bytes((REPO / "Pulumi.yaml").read_bytes())
    given = {"--domain": "shop", "--dev": "confluent", "--prod": "confluent"}
    args = [part for flag, value in given.items() if flag not in flags for part in (flag, value)]
    if "--topic" not in flags:
        args += ["--topic", "orders=checkout:billing"]
    code, out, err = kafka_platform(tmp_path, capsys, "init", *args, *flags)
    assert code == 2
    assert message in err, err
    assert "Traceback" not in err and out == ""
    assert [path.name for path in tmp_path.iterdir()] == ["Pulumi.yaml"]


def test_the_same_flags_write_the_same_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flags = (*SHOP, "--dev", "kafka", "--prod", "msk", *EXISTING, *MSK, "--region", "eu-west-1")
    written = []
    for name in ("first", "second"):
        root = tmp_path / name
        root.mkdir()
        (root / "Pulumi.yaml").write_bytes((REPO / "Pulumi.yaml").read_bytes())
        assert kafka_platform(root, capsys, "init", *flags)[0] == 0
        written.append({file: (root / file).read_bytes() for file in WRITTEN})
    assert written[0] == written[1]


def test_a_stack_of_its_own_takes_a_value_for_it_alone(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ("--region", "prod=eu-west-1", "--region", "us-west-2", "--cloud", "prod=GCP")
    code, _, err = kafka_platform(
        project.root, capsys, "init", *SHOP, "--dev", "confluent", "--prod", "confluent", *flags, "--force"
    )
    assert code == 0, err
    dev, prod = (load_plan(project.root, stack).cluster.provider_settings for stack in ("dev", "prod"))
    assert isinstance(dev, ConfluentSettings) and isinstance(prod, ConfluentSettings)
    assert (dev.cloud, dev.region) == ("AWS", "us-west-2")
    assert (prod.cloud, prod.region) == ("GCP", "eu-west-1")


def test_without_topics_it_keeps_the_topology_and_writes_stack_files_for_it(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """The path from a running cluster: `import` wrote topology.yaml (here: the example's)."""
    topology = (project.root / "topology.yaml").read_bytes()
    code, out, err = kafka_platform(
        project.root, capsys, "init", "--dev", "kafka", "--prod", "kafka", *EXISTING, "--force"
    )
    assert code == 0, err
    assert out.splitlines()[0] == "init: kept topology.yaml (domain aura360: 6 topics, 5 services, 8 events)"
    assert (project.root / "topology.yaml").read_bytes() == topology
    for stack in ("dev", "prod"):
        set_admin_password(project, stack)
    code, out, err = kafka_platform(project.root, capsys, "validate")
    assert code == 0, err
    assert "ok  prod: 6 topics, 5 principals" in out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--dev", "confluent", "--prod", "confluent"), "--topic: give at least one (no topology.yaml in "),
        (
            ("--topic", "o=a:b", "--dev", "confluent", "--prod", "confluent"),
            "--domain: required with --topic",
        ),
        (
            ("--event", "e=o:id", "--dev", "confluent", "--prod", "confluent"),
            "--event 'e=o:id': needs the --topic",
        ),
    ],
)
def test_without_a_topology_or_a_domain_it_says_which_flag_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: tuple[str, ...], message: str
) -> None:
    (tmp_path / "Pulumi.yaml").write_bytes((REPO / "Pulumi.yaml").read_bytes())
    code, _, err = kafka_platform(tmp_path, capsys, "init", *flags)
    assert code == 2 and message in err, err
    assert [path.name for path in tmp_path.iterdir()] == ["Pulumi.yaml"]


def test_a_domain_other_than_the_kept_topologys_is_refused(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(project.root)
    code, _, err = kafka_platform(
        project.root,
        capsys,
        "init",
        "--domain",
        "shop",
        "--dev",
        "confluent",
        "--prod",
        "confluent",
        "--force",
    )
    assert code == 2
    assert "--domain 'shop': topology.yaml is domain 'aura360' (give --topic to replace it)" in err
    assert snapshot(project.root) == before
