"""How `import` maps a cluster onto topology terms and how `drift` classifies differences,
on hand-built cluster contents (the real-broker tests are in tests/integration)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from infra.live.drift import Scope, compare
from infra.live.importer import import_topology, stack_overrides
from infra.live.live_cluster import LiveAcl, LiveCluster, LiveTopic
from infra.model.durations import format_retention
from infra.model.stacks import load_stack
from infra.model.topology import topology_from_data
from infra.plan.model import Plan
from tests.project_files import Project, existing_cluster_stack_file


def topic(name: str, partitions: int = 1, **config: str) -> LiveTopic:
    effective = {"cleanup.policy": "delete", "retention.ms": "604800000", **config}
    return LiveTopic(name, partitions, 1, dict(config), effective)


def acl(principal: str, resource_type: str, name: str, operation: str, pattern: str = "LITERAL") -> LiveAcl:
    return LiveAcl(f"User:{principal}", resource_type, name, pattern, operation, "ALLOW", "*")


@pytest.mark.parametrize(
    ("milliseconds", "text"),
    [
        (604_800_000, "1w"),
        (86_400_000, "1d"),
        (3_600_000, "1h"),
        (90_000, "90s"),
        (1_500, "1500ms"),
        (-1, "infinite"),
    ],
)
def test_retention_is_written_in_its_shortest_exact_form(milliseconds: int, text: str) -> None:
    assert format_retention(milliseconds) == text


def test_a_streams_application_and_per_instance_groups_are_recognised() -> None:
    live = LiveCluster(
        topics={name: topic(name) for name in ("shop.orders", "shop.totals", "shop.cache")},
        acls=[
            acl("totals-app", "TOPIC", "shop.orders", "READ"),
            acl("totals-app", "TOPIC", "shop.totals", "WRITE"),
            acl("totals-app", "GROUP", "shop.totals-app", "READ"),
            *[
                acl("totals-app", "TOPIC", "shop.totals-app-", op, "PREFIXED")
                for op in ("CREATE", "READ", "WRITE")
            ],
            acl("totals-app", "TRANSACTIONAL_ID", "shop.totals-app-", "WRITE", "PREFIXED"),
            acl("cache-1", "TOPIC", "shop.cache", "READ"),
            acl("cache-1", "GROUP", "shop.cache-invalidator.", "READ", "PREFIXED"),
        ],
    )
    services = import_topology(live, "shop", admin_principals=set()).topology["services"]
    assert services["totals-app"] == {
        "kind": "streams",
        "produces": ["totals"],
        "consumes": ["orders"],
        "transactional": True,
    }
    assert services["cache-1"] == {
        "consumes": ["cache"],
        "consumer_group": "shop.cache-invalidator",
        "consumer_group_per_instance": True,
    }


def test_principals_become_service_names_or_are_reported() -> None:
    live = LiveCluster(
        topics={"shop.orders": topic("shop.orders"), "pr-12.shop.orders": topic("pr-12.shop.orders")},
        acls=[
            acl("shop.prod.billing", "TOPIC", "shop.orders", "READ"),  # the platform's own naming
            acl("CN=Orders Service,OU=x", "TOPIC", "shop.orders", "WRITE"),
            acl("___", "TOPIC", "shop.orders", "READ"),
            acl("kafka-admin", "TOPIC", "shop.orders", "READ"),
        ],
    )
    result = import_topology(live, "shop", admin_principals={"kafka-admin"})
    assert set(result.topology["services"]) == {"billing", "cn-orders-service-ou-x"}
    assert "skipped topic pr-12.shop.orders: it belongs to a pr-<n> preview" in result.report
    assert "skipped User:___: no service name can be made of it (1 ACLs)" in result.report
    assert "skipped User:kafka-admin: the admin identity (1 ACLs)" in result.report
    topology_from_data(result.topology)  # and it validates


def test_stack_overrides_carry_what_differs_in_another_environment(project: Project) -> None:
    """Prod runs 24 partitions where the topology (imported from dev) says 6; replication and
    min ISR match prod's defaults, so only partitions are overridden."""
    reader = {"consumes": ["user.events"]}
    topology = topology_from_data(
        {
            "domain": "aura360",
            "topics": {"user.events": {"partitions": 6}},
            "services": {"api": reader, "guardian": reader},
        }
    )
    events = LiveTopic("aura360.user.events", 24, 3, {}, {"min.insync.replicas": "2"})
    live = LiveCluster(topics={events.name: events}, acls=[])
    settings = load_stack(project.root, "prod", topology).settings
    assert stack_overrides(live, topology, settings) == {"user.events": {"partitions": 24}}


@pytest.fixture
def local(project: Project) -> Plan:
    return project.plan("local")


def live_copy(plan: Plan) -> LiveCluster:
    """A cluster holding exactly the plan."""
    return LiveCluster(
        topics={
            t.name: LiveTopic(t.name, t.partitions, t.replication_factor, t.config, t.config)
            for t in plan.topics
        },
        acls=[
            LiveAcl(
                f"User:{a.principal}",
                a.resource_type,
                a.resource_name,
                a.pattern_type,
                a.operation,
                "ALLOW",
                "*",
            )
            for a in plan.acls
        ],
    )


def test_a_cluster_holding_exactly_the_plan_is_in_sync(local: Plan) -> None:
    assert compare(local, live_copy(local), "test", Scope()).in_sync


def test_previews_topics_and_other_domains_are_not_drift_of_the_base_stack(local: Plan) -> None:
    live = live_copy(local)
    live.topics["pr-4.aura360.user.events"] = topic("pr-4.aura360.user.events")
    live.topics["billing.invoices"] = topic("billing.invoices")
    report = compare(local, live, "test", Scope())
    assert report.in_sync
    assert report.notes == ["2 topics outside 'aura360.' not compared (--all-topics)"]
    everything = compare(local, live, "test", Scope(all_topics=True))
    assert everything.extra_topics == ["billing.invoices"]


def test_acls_named_by_service_account_ids_compare_through_principal_ids(local: Plan) -> None:
    ids = {service.name: f"sa-{index}" for index, service in enumerate(local.services)}
    account = {f"User:{s.principal}": f"User:{ids[s.name]}" for s in local.services}
    live = live_copy(local)
    renamed = LiveCluster(
        topics=live.topics, acls=[replace(a, principal=account[a.principal]) for a in live.acls]
    )
    assert not compare(local, renamed, "test", Scope()).in_sync
    assert compare(local, renamed, "test", Scope(principal_ids=ids)).in_sync


def test_the_admins_grants_are_not_foreign(local: Plan) -> None:
    live = live_copy(local)
    admin_grant = acl("platform-admin", "TOPIC", "aura360.", "ALTER", "PREFIXED")
    live.acls.append(admin_grant)
    assert compare(local, live, "test", Scope()).foreign_acls == [
        "ALLOW User:platform-admin ALTER TOPIC aura360.*"
    ]
    assert compare(local, live, "test", Scope(ignore_principals={"platform-admin"})).in_sync


def test_rbac_stacks_say_their_role_bindings_are_not_compared(project: Project) -> None:
    project.edit_settings("prod", lambda s: s.update(acls={"mode": "rbac"}))
    plan = project.plan("prod")
    report = compare(plan, live_copy(plan), "test", Scope())
    assert report.in_sync
    assert report.notes == [
        "acls.mode rbac: role bindings live in Confluent Cloud's API and are not compared"
    ]


def test_a_rotations_previous_generation_is_a_note_not_drift(project: Project) -> None:
    project.write("Pulumi.staging.yaml", existing_cluster_stack_file())
    project.edit_settings("staging", lambda s: s.update(credentials={"rotation": {"generation": 2}}))
    rotated = project.plan("staging")
    live = live_copy(rotated)
    previous = [replace(a, principal=a.principal.removesuffix("-g2")) for a in live.acls]
    intruder = acl("aura360.staging.api-admin", "TOPIC", "aura360.user.events", "READ")
    live.acls.extend([*previous, intruder])
    report = compare(rotated, live, "test", Scope())
    assert report.foreign_acls == [str(intruder)]
    assert report.notes == [
        f"User:aura360.staging.{s.name} is a previous credential generation, still granted: "
        "the first `pulumi up` after the rotation's overlap revokes it"
        for s in rotated.services
    ]


def test_drift_table_and_json_are_deterministic(local: Plan, tmp_path: Path) -> None:
    live = live_copy(local)
    live.topics["aura360.zzz"] = topic("aura360.zzz")
    live.topics["aura360.aaa"] = topic("aura360.aaa")
    first, second = (compare(local, live, "test", Scope()) for _ in range(2))
    assert first.to_json() == second.to_json()
    assert first.extra_topics == ["aura360.aaa", "aura360.zzz"]
    assert first.to_table().splitlines()[-1] == "drift found"
