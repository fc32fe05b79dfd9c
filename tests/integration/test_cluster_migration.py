"""A cluster migration on two real brokers (#31): the source, an Apache Kafka started here, and the
target, the session's broker, both with SCRAM and ACLs and set up through the code that ships.
MirrorMaker 2 runs from connect-mirror's jars with exactly the plan's properties and grants; a real
producing and a real consuming service (the client, on the env the plan gives each) move one by
one while they run, consumer first; every event is counted. Then each of the mirror's grants is
shown needed, and `migration status` is read at each step.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.commands.migration import scope
from infra.live.cluster_admin import ScramCredential, create_grants, upsert_scram_users
from infra.live.converge import planned_grant
from infra.live.kafka_broker import Broker, BrokerOptions, local_kafka, missing_tools
from infra.live.migration_status import MigrationStatus, read_status
from infra.live.mirror_maker import MirrorPasswords, running_mirror
from infra.model.migration_settings import ClusterSide
from infra.plan.model import Plan
from infra.plan.resolve import load_plan
from infra.render.mirror_maker import mirror_maker_properties
from tests.broker_setup import deploy_plan
from tests.conftest import REQUIRE_BROKER, skip_unless_required
from tests.e2e.engine import existing_cluster_settings
from tests.eventually import eventually
from tests.integration.admin_env import admin_env
from tests.integration.client_env import ServiceProcess, service_env
from tests.project_files import ENCRYPTED, EXAMPLE

pytestmark = pytest.mark.integration

STACK = "moving"
FEEDER = "ingest-feeder"  # produces vectordb.ingest (added to the example for this test)
INGEST = "vectordb-ingest"  # consumes it
EVENT = "ingest.requested"
PAUSE_S = "0.01"  # the feeder's trickle: about 100 events a second


@dataclass
class Pair:
    root: Path
    source: Broker
    target: Broker
    domain: str
    passwords: dict[str, str]  # each service's, the same on both clusters
    mirror_password: str

    def plan(self, services: dict[str, ClusterSide], keep: str = "30d") -> Plan:
        settings = existing_cluster_settings(self.target)
        settings["migration"] = {
            "source": {
                "bootstrap_servers": self.source.bootstrap.split(","),
                "security_protocol": self.source.security_protocol,
                "sasl_mechanism": self.source.sasl_mechanism,
                "admin": {"username": self.source.admin_user},
            },
            "services": services,
            "keep": keep,
            "mirror": {"sync_interval": 1},
        }
        document = {
            "config": {
                "kafka-platform:kafkaAdminPassword": {"secure": ENCRYPTED},
                "kafka-platform:migrationSourceAdminPassword": {"secure": ENCRYPTED},
                "kafka-platform:settings": settings,
            }
        }
        (self.root / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
        return load_plan(self.root, STACK)

    def env(self, plan: Plan, service: str) -> dict[str, str]:
        return service_env(plan.service(service), self.passwords)

    def mirror_passwords(self) -> MirrorPasswords:
        return MirrorPasswords(source=self.mirror_password, target=self.mirror_password)

    def status(self, plan: Plan) -> MigrationStatus:
        assert plan.migration is not None
        return read_status(self.source, self.target, scope(plan, plan.migration))

    def status_command(self, plan: Plan) -> tuple[int, dict[str, Any]]:
        """`kafka-platform migration status` as a pipeline runs it: (exit code, its JSON)."""
        env = admin_env(self.target) | {"MIGRATION_SOURCE_ADMIN_PASSWORD": self.source.admin_password}
        command = [sys.executable, "-m", "infra", "--project-dir", str(self.root), "migration", "status"]
        result = subprocess.run(
            [*command, "--stack", STACK, "--format", "json"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,
        )
        assert result.returncode in (0, 1), result.stderr
        return result.returncode, json.loads(result.stdout)


@pytest.fixture(scope="module")
def pair(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """The source broker; the example (plus a feeder) under a fresh domain on both clusters, as the
    old platform left the source and `pulumi up` leaves the target; the mirror principal on both."""
    missing = missing_tools()
    if missing:
        skip_unless_required(
            f"{' and '.join(missing)} not installed to start the source Kafka", REQUIRE_BROKER
        )
    root = tmp_path_factory.mktemp("migration")
    topology = yaml.safe_load((EXAMPLE / "topology.yaml").read_text())
    domain = f"mig{secrets.token_hex(3)}"
    topology["domain"] = domain
    topology["services"][FEEDER] = {"produces": ["vectordb.ingest"]}
    topology["events"][EVENT] = {"topic": "vectordb.ingest", "transport": "kafka", "key": "user:{user_id}"}
    (root / "topology.yaml").write_text(yaml.safe_dump(topology, sort_keys=False))
    (root / "Pulumi.yaml").write_text((EXAMPLE / "Pulumi.yaml").read_text())
    with local_kafka(root / "source-kafka", BrokerOptions()) as source:
        pair = Pair(root, source, broker, domain, {}, secrets.token_urlsafe(18))
        plan = pair.plan({})
        assert plan.migration is not None
        pair.passwords = deploy_plan(broker, plan)
        deploy_plan(source, plan, pair.passwords)
        for cluster, side in ((source, plan.migration.source), (broker, plan.migration.target)):
            admin = cluster.admin()
            credential = ScramCredential((cluster.sasl_mechanism,), pair.mirror_password)
            upsert_scram_users(admin, {side.principal: credential})
            create_grants(admin, [planned_grant(acl) for acl in side.acls])
        yield pair


def test_services_move_one_by_one_while_running_and_no_event_is_lost(
    pair: Pair, tmp_path: Path, migration_report: list[str]
) -> None:
    started = time.monotonic()
    on_source = pair.plan({})
    feeder = ServiceProcess(pair.env(on_source, FEEDER), "publish", EVENT, "0", PAUSE_S)
    consumer = ServiceProcess(pair.env(on_source, INGEST), "consume", "0", "10")
    try:
        assert len(consumer.wait_for(count=50, timeout=60)) >= 50, consumer.errors()
        # Nothing mirrors yet: the status says so and a pipeline stops (exit 1).
        code, document = pair.status_command(on_source)
        assert code == 1 and not document["in_sync"], document
        assert document["services"][INGEST] == "source"

        properties = mirror_maker_properties(on_source)
        with running_mirror(tmp_path / "mirror", properties, pair.mirror_passwords(), pair.target):
            # 1. The consumer: stopped on the source, then started on the target once its group's
            # offsets are translated there.
            assert consumer.stop() == 0, consumer.errors()
            handled_on_source = list(consumer.seen)
            ready = eventually(
                lambda: pair.status(on_source),
                lambda status: any(step.startswith(f"{INGEST}: may move") for step in status.safe_moves),
                timeout=60,
                what=f"{INGEST} safe to move",
            )
            topic = f"{pair.domain}.vectordb.ingest"
            bound = sum(g.rereads or 0 for g in ready.groups if g.service == INGEST and g.topic == topic)
            consumer_moved = pair.plan({INGEST: "target"})
            assert consumer_moved.service(INGEST).env["KAFKA_BROKER_URL"] == pair.target.bootstrap
            consumer = ServiceProcess(pair.env(consumer_moved, INGEST), "consume", "0", "10")
            code, document = pair.status_command(consumer_moved)
            assert document["services"][INGEST] == "target", document
            assert any(step.startswith(f"{FEEDER}: may move") for step in document["safe_moves"]), document

            # 2. The producer: stopped on the source, started on the target once the mirror has
            # copied everything it wrote there (so no key's events arrive out of order).
            assert feeder.stop() == 0, feeder.errors()
            published = list(feeder.seen)
            eventually(
                lambda: pair.status(consumer_moved),
                lambda status: next(t for t in status.topics if t.topic == topic).lag == 0,
                timeout=60,
                what=f"the mirror drained {topic}",
            )
            code, document = pair.status_command(consumer_moved)
            assert code == 0 and document["in_sync"], document
            both_moved = pair.plan({INGEST: "target", FEEDER: "target"})
            feeder = ServiceProcess(
                pair.env(both_moved, FEEDER), "publish", EVENT, str(int(published[-1]) + 1), PAUSE_S
            )
            feeder.wait_for(count=100, timeout=60)
            assert feeder.stop() == 0, feeder.errors()
            published += feeder.seen
        consumer.wait_for(until=published[-1], timeout=60)
        assert consumer.stop() == 0, consumer.errors()
    finally:
        for process in (feeder, consumer):
            if process.process.poll() is None:
                process.stop()
    handled = handled_on_source + consumer.seen
    lost = sorted(set(published) - set(handled), key=int)
    duplicates = len(handled) - len(set(handled))
    migration_report.append(
        f"migration: {len(published)} events published across the move, {len(lost)} lost, "
        f"{duplicates} read twice (bound: {bound}, the re-reads `migration status` showed before the "
        f"consumer moved), {time.monotonic() - started:.0f} s"
    )
    assert lost == []
    assert duplicates <= bound
    assert set(handled) <= set(published)

    # 3. Every service on the target: the source can go once the mirror was idle for `keep`.
    everyone = {service.name: "target" for service in both_moved.services}
    code, document = pair.status_command(pair.plan(everyone, keep="1h"))
    assert (code, document["source_can_go"]) == (0, False), document
    idle = document["idle_seconds"]
    assert idle is not None and idle < 3600
    code, document = pair.status_command(pair.plan(everyone, keep=f"{idle}s"))
    assert (code, document["source_can_go"], document["safe_moves"]) == (0, True, []), document
