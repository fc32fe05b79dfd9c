"""`import` and `drift` against the real broker, through the CLI as a user runs them.

Each test works under a domain of its own, so topics and ACLs of other tests on the same
broker are other stacks' business (and show that `drift` leaves them out).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from infra.live.kafka_broker import Broker
from infra.plan.model import Plan
from tests.broker_setup import deploy_plan, remove_acls, set_topic_config
from tests.eventually import eventually, wait_for_acls, wait_for_topic_config
from tests.integration.admin_env import admin_env
from tests.project_files import Project

WEEK_MS = str(7 * 24 * 3600 * 1000)


def cli(broker: Broker, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = admin_env(broker)
    return subprocess.run(
        [sys.executable, "-m", "infra", "--project-dir", str(project), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def import_into(
    project: Project, broker: Broker, domain: str, include: str
) -> subprocess.CompletedProcess[str]:
    """`import` of the topics ``include`` finds, written over the project's topology.yaml."""
    out = str(project.root / "topology.yaml")
    args = ("import", "--domain", domain, "--include", include, "--output", out, "--force")
    return cli(broker, project.root, *args)


def unique_domain(stem: str) -> str:
    return f"{stem}{secrets.token_hex(3)}"


def allow(principal: str, restype: ResourceType, name: str, operation: AclOperation, **kw: Any) -> AclBinding:
    return AclBinding(
        restype,
        name,
        kw.get("pattern", ResourcePatternType.LITERAL),
        f"User:{principal}",
        "*",
        operation,
        kw.get("permission", AclPermissionType.ALLOW),
    )


def create(broker: Broker, topics: list[NewTopic], acls: list[AclBinding]) -> None:
    admin = broker.admin()
    for future in (admin.create_topics(topics, request_timeout=30) if topics else {}).values():
        future.result()
    if acls:
        for future in admin.create_acls(acls, request_timeout=30).values():
            future.result()
        wait_for_acls(admin, present=acls)


def drift(broker: Broker, project: Path, stack: str = "local") -> tuple[int, dict[str, Any]]:
    result = cli(broker, project, "drift", "--stack", stack, "--format", "json")
    assert result.returncode in {0, 3}, result.stderr
    return result.returncode, json.loads(result.stdout)


def test_a_hand_made_estate_imports_validates_and_plans_exactly_what_runs(
    broker: Broker, tmp_path: Path
) -> None:
    domain = unique_domain("estate")
    api = f"{domain}.local.orders-api"  # a principal that already follows the platform's naming
    create(
        broker,
        [
            NewTopic(f"{domain}-prospect-ingestion", 1, 1, config={"retention.ms": WEEK_MS}),
            NewTopic(f"{domain}.orders", 3, 1, config={"retention.ms": "86400000"}),
            NewTopic(
                f"{domain}.customers",
                2,
                1,
                config={"cleanup.policy": "compact", "max.message.bytes": "2097152"},
            ),
        ],
        [
            allow(api, ResourceType.TOPIC, f"{domain}.orders", AclOperation.WRITE),
            allow(api, ResourceType.TOPIC, f"{domain}-prospect-ingestion", AclOperation.READ),
            allow(api, ResourceType.TOPIC, f"{domain}.customers", AclOperation.READ),
            allow(api, ResourceType.GROUP, f"{domain}.orders-api", AclOperation.READ),
            allow(
                api,
                ResourceType.TRANSACTIONAL_ID,
                f"{domain}.orders-api.",
                AclOperation.WRITE,
                pattern=ResourcePatternType.PREFIXED,
            ),
        ],
    )
    project = Project(tmp_path)
    imported = import_into(project, broker, domain, f"^_?{domain}")
    assert imported.returncode == 0, imported.stderr

    topology = yaml.safe_load((project.root / "topology.yaml").read_text())
    assert topology["topics"][f"{domain}-prospect-ingestion"] == {
        "name": f"{domain}-prospect-ingestion",
        "partitions": 1,
        "retention": "1w",
    }
    assert topology["topics"]["orders"] == {"partitions": 3, "retention": "1d"}
    assert topology["topics"]["customers"] == {
        "partitions": 2,
        "cleanup": "compact",
        "config": {"max.message.bytes": "2097152"},
    }
    assert topology["services"] == {
        "orders-api": {
            "produces": ["orders"],
            "consumes": ["customers", f"{domain}-prospect-ingestion"],
            "transactional": True,
        }
    }
    validated = cli(broker, project.root, "validate", "--stack", "local")
    assert validated.returncode == 0, validated.stderr

    code, report = drift(broker, project.root)
    assert (code, report["in_sync"]) == (0, True), report


def test_import_reports_what_it_cannot_map(broker: Broker, tmp_path: Path) -> None:
    domain = unique_domain("odd")
    odd_acls = [
        allow("legacy-app", ResourceType.TOPIC, f"{domain}.events", AclOperation.READ),
        allow(
            "legacy-app",
            ResourceType.TOPIC,
            f"{domain}.events",
            AclOperation.WRITE,
            permission=AclPermissionType.DENY,
        ),
        allow("legacy-app", ResourceType.TOPIC, "*", AclOperation.DESCRIBE),
    ]
    create(broker, [NewTopic(f"{domain}.events", 1, 1), NewTopic(f"_confluent-{domain}", 1, 1)], odd_acls)
    project = Project(tmp_path)
    result = import_into(project, broker, domain, f"^_?{domain}")
    assert result.returncode == 0, result.stderr
    assert f"not mapped User:legacy-app: DENY User:legacy-app WRITE TOPIC {domain}.events" in result.stderr
    assert "not mapped User:legacy-app: ALLOW User:legacy-app DESCRIBE TOPIC *" in result.stderr
    assert f"skipped internal topic _confluent-{domain}" in result.stderr
    services = yaml.safe_load((project.root / "topology.yaml").read_text())["services"]
    assert services["legacy-app"] == {"consumes": ["events"]}
    # A wildcard grant reaches every topic on the broker: other tests' drift would see it.
    remove_acls(broker, odd_acls)


def test_a_topology_survives_apply_then_import(broker: Broker, tmp_path: Path) -> None:
    """Round trip: what import reads back from a cluster made from a topology plans the same
    topics and grants (descriptions, keys and events are not on a cluster to read)."""
    domain = unique_domain("round")
    (tmp_path / "original").mkdir()
    (tmp_path / "again").mkdir()
    original = Project(tmp_path / "original").edit_topology(lambda t: t.update(domain=domain))
    plan = original.plan("local")
    deploy_plan(broker, plan)

    again = Project(tmp_path / "again")
    result = import_into(again, broker, domain, f"^{domain}\\.")
    assert result.returncode == 0, result.stderr
    reimported = again.plan("local")
    assert topics_of(reimported) == topics_of(plan)
    assert set(reimported.acls) == set(plan.acls)
    assert [s.name for s in reimported.services] == [s.name for s in plan.services]


def topics_of(plan: Plan) -> list[tuple[str, int, int, dict[str, str]]]:
    return [(t.name, t.partitions, t.replication_factor, t.config) for t in plan.topics]


def test_drift_reports_hand_made_changes_exactly_and_clears_after_reapplying(
    broker: Broker, tmp_path: Path
) -> None:
    domain = unique_domain("drift")
    project = Project(tmp_path).edit_topology(lambda t: t.update(domain=domain))
    plan = project.plan("local")
    passwords = deploy_plan(broker, plan)
    code, report = drift(broker, project.root)
    assert (code, report["in_sync"]) == (0, True), report

    admin = broker.admin()
    events = f"{domain}.user.events"
    guardian = plan.service("guardian").principal
    extra_acl = allow(guardian, ResourceType.TOPIC, events, AclOperation.WRITE)
    planned_acl = allow(plan.service("api").principal, ResourceType.TOPIC, events, AclOperation.WRITE)
    create(broker, [NewTopic(f"{domain}.hand-made", 1, 1)], [extra_acl])
    set_topic_config(broker, events, "retention.ms", "3600000")
    remove_acls(broker, [planned_acl])
    wait_for_topic_config(admin, events, {"retention.ms": "3600000"})
    wait_for_acls(admin, absent=[planned_acl])

    code, report = drift(broker, project.root)
    assert code == 3
    assert report["missing_topics"] == []
    assert report["extra_topics"] == [f"{domain}.hand-made"]
    assert report["different_topics"] == [
        {
            "topic": events,
            "setting": "retention.ms",
            "planned": plan.topic("user.events").config["retention.ms"],
            "live": "3600000",
        }
    ]
    assert report["missing_acls"] == [f"ALLOW User:{plan.service('api').principal} WRITE TOPIC {events}"]
    assert report["extra_acls"] == [f"ALLOW User:{guardian} WRITE TOPIC {events}"]
    assert report["foreign_acls"] == []

    table = cli(broker, project.root, "drift", "--stack", "local")
    assert table.returncode == 3
    assert f"  extra      {domain}.hand-made  (not in topology.yaml; left alone)" in table.stdout

    # Re-applying restores the retention and the deleted grant; what was added by hand beside the
    # plan (a topic, an ACL) is left for a person to remove, as the report says.
    deploy_plan(broker, plan, passwords)
    [f.result() for f in admin.delete_topics([f"{domain}.hand-made"], request_timeout=30).values()]
    remove_acls(broker, [extra_acl])
    # Deleted topics and ACLs leave the metadata a moment after the controller commits.
    eventually(lambda: drift(broker, project.root), lambda found: found[0] == 0, timeout=30, what="no drift")


def test_foreign_grants_on_the_plans_topics_are_drift(broker: Broker, tmp_path: Path) -> None:
    domain = unique_domain("foreign")
    project = Project(tmp_path).edit_topology(lambda t: t.update(domain=domain))
    plan = project.plan("local")
    deploy_plan(broker, plan)
    create(
        broker,
        [],
        [
            allow(
                "someone-else",
                ResourceType.TOPIC,
                f"{domain}.",
                AclOperation.READ,
                pattern=ResourcePatternType.PREFIXED,
            )
        ],
    )
    code, report = drift(broker, project.root)
    assert code == 3
    assert report["foreign_acls"] == [f"ALLOW User:someone-else READ TOPIC {domain}.*"]


@pytest.mark.parametrize("command", ["drift", "import"])
def test_an_unreachable_cluster_exits_1_with_a_clear_message(tmp_path: Path, command: str) -> None:
    project = Project(tmp_path)
    args = ["--stack", "local"] if command == "drift" else []
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "infra",
            "--project-dir",
            str(project.root),
            command,
            *args,
            "--bootstrap-servers",
            "127.0.0.1:1",
            "--security-protocol",
            "PLAINTEXT",
            "--timeout",
            "2",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert f"{command}: the Kafka cluster at 127.0.0.1:1 did not answer" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_refused_login_is_reported_as_a_login_failure(broker: Broker, tmp_path: Path) -> None:
    """Not librdkafka's "Broker transport failure": the user, the mechanism and that it failed."""
    project = Project(tmp_path)
    wrong = Broker(**{**broker.__dict__, "admin_password": "not-the-password"})  # pragma: allowlist secret
    result = cli(wrong, project.root, "drift", "--stack", "local", "--timeout", "10")
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"drift: the login to {broker.bootstrap} as '{broker.admin_user}' ({broker.sasl_mechanism}) failed"
    ), result.stderr
    assert "Traceback" not in result.stderr


def test_a_removed_services_working_credential_is_drift(broker: Broker, tmp_path: Path) -> None:
    """A service dropped from the topology leaves its SCRAM user and grants on the cluster (`make
    local` lists them as left alone): drift reports them as leftover principals, not in sync."""
    domain = unique_domain("leftover")
    project = Project(tmp_path).edit_topology(lambda t: t.update(domain=domain))
    deploy_plan(broker, project.plan("local"))

    def drop_ingest(topology: dict[str, Any]) -> None:
        del topology["services"]["vectordb-ingest"]

    project.edit_topology(drop_ingest)
    code, report = drift(broker, project.root)
    ingest = f"{domain}.local.vectordb-ingest"
    assert code == 3
    assert f"user {ingest}" in report["leftover_principals"]
    assert f"grant ALLOW User:{ingest} READ TOPIC {domain}.vectordb.ingest" in report["leftover_principals"]
    assert not [acl for acl in report["foreign_acls"] if ingest in acl], "reported once"
    assert not [line for line in report["leftover_principals"] if f"{domain}.local.api" in line]
