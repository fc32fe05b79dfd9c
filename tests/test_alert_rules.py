"""The generated lag alerts: one for every planned consumer, and, judged by Prometheus's own
promtool, rules that fire for exactly the service that lags, clear when it catches up, and name
a group nobody consumes from."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.model.errors import ConfigError
from infra.plan.model import Plan
from infra.plan.resolve import load_plan
from infra.render.alert_rules import dashboard, rule_groups
from tests.conftest import skip_unless_required
from tests.project_files import EXAMPLE, REPO, Project, migrating_stack_file

REQUIRED = os.environ.get("KAFKA_PLATFORM_REQUIRE_PROMTOOL") == "1"
EXPORTER_ALERTS = {"KafkaConsumerLagMessages", "KafkaConsumerLagSeconds", "KafkaConsumerGroupEmpty"}


def alerts(plan: Plan) -> list[dict[str, Any]]:
    return [rule for group in rule_groups(plan) for rule in group["rules"]]


def planned_consumers(plan: Plan) -> set[tuple[str, str]]:
    return {(service.name, topic) for service in plan.services for topic in service.consumes}


@pytest.mark.parametrize("stack", ["local", "dev", "prod"])
def test_every_planned_consumer_has_a_lag_alert(stack: str) -> None:
    plan = load_plan(EXAMPLE, stack)
    covered = {
        (rule["labels"]["service"], rule["labels"]["topic"])
        for rule in alerts(plan)
        if rule["alert"] == "KafkaConsumerLagMessages"
    }
    assert covered == planned_consumers(plan)
    assert all(rule["labels"]["stack"] == stack for rule in alerts(plan))


def test_confluent_stacks_alert_on_confluents_own_metric_names() -> None:
    rules = alerts(load_plan(EXAMPLE, "prod"))
    assert {rule["alert"] for rule in rules} == {"KafkaConsumerLagMessages"}
    assert all("confluent_kafka_server_consumer_lag_offsets{consumer_group_id=~" in r["expr"] for r in rules)


def test_thresholds_come_from_service_then_topic_then_defaults(project: Project) -> None:
    def thresholds(topology: dict[str, Any]) -> None:
        topology["monitoring"] = {"lag": {"messages": 500, "seconds": 120}, "for": "2m"}
        topology["topics"]["user.events"]["monitoring"] = {"lag": {"messages": 50000}}
        topology["services"]["context-aggregator"]["monitoring"] = {"lag": {"seconds": "10m"}}
        topology["services"]["guardian"]["monitoring"] = {"enabled": False}

    project.edit_topology(thresholds)
    watches = {(w.service, w.topic): w for w in project.plan("local").consumers}
    aggregator = watches[("context-aggregator", "aura360.user.events")]
    assert (aggregator.lag_messages, aggregator.lag_seconds, aggregator.for_seconds) == (50000, 600, 120)
    api = watches[("api", "aura360.guardian.responses")]
    assert (api.lag_messages, api.lag_seconds, api.for_seconds) == (500, 120, 120)
    assert not any(service == "guardian" for service, _ in watches), "guardian opted out"


@pytest.mark.parametrize(
    ("monitoring", "problem"),
    [
        (
            {"lag": {"messages": 0}},
            "topology.yaml: monitoring.lag.messages: must be >= 1 (got 0)",
        ),
        ({"lag": {"seconds": "-5m"}}, "topology.yaml: monitoring.lag.seconds: "),
        ({"for": "5 minutes"}, "topology.yaml: monitoring.for: "),
        ({"lag": {"bytes": 5}}, "topology.yaml: monitoring.lag.bytes: unknown key"),
    ],
)
def test_bad_thresholds_name_their_key_path(
    project: Project, monitoring: dict[str, Any], problem: str
) -> None:

    project.edit_topology(lambda t: t.update(monitoring=monitoring))
    with pytest.raises(ConfigError) as caught:
        project.plan("local")
    assert str(caught.value).startswith(problem), str(caught.value)


def test_the_dashboard_has_a_row_per_service_and_a_panel_per_consumed_topic() -> None:
    plan = load_plan(EXAMPLE, "local")
    panels = dashboard(plan)["panels"]
    rows = [panel["title"] for panel in panels if panel["type"] == "row"]
    assert rows == sorted({service for service, _ in planned_consumers(plan)})
    graphs = [panel["title"] for panel in panels if panel["type"] == "timeseries"]
    assert sorted(graphs) == sorted(f"{topic}: messages behind" for _, topic in planned_consumers(plan))


# --- promtool -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool") or str(REPO / ".venv" / "bin" / "promtool")
    if not Path(found).exists():
        skip_unless_required("promtool is not built: `make tools` builds it where Go exists", REQUIRED)
    return found


def run_promtool(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )


def test_promtool_accepts_the_rendered_rules(promtool: str, tmp_path: Path) -> None:
    for stack in ("local", "dev"):
        path = tmp_path / f"{stack}.rules.yml"
        path.write_text(yaml.safe_dump({"groups": rule_groups(load_plan(EXAMPLE, stack))}, sort_keys=True))
        checked = run_promtool(promtool, "check", "rules", path.name, cwd=tmp_path)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def series(plan: Plan) -> list[dict[str, str]]:
    """Exporter metrics for the local plan: api falls behind on guardian.responses while its topic
    is produced to; context-aggregator is far behind for 10 minutes, then caught up; guardian's
    group has no member; every other group has one and no lag."""
    lagging, recovering, idle = "aura360.api", "aura360.context-aggregator", "aura360.guardian"
    out = []
    for service in plan.services:
        if service.consumer_group is None:
            continue
        members = "0x20" if service.consumer_group == idle else "1x20"
        out.append(
            {
                "series": f'kafka_consumergroup_members{{consumergroup="{service.consumer_group}"}}',
                "values": members,
            }
        )
        for consumed in service.consumes:
            lag = {lagging: "0+200x20", recovering: "5000x10 0x10"}.get(service.consumer_group, "0x20")
            labels = f'consumergroup="{service.consumer_group}",topic="{consumed}",partition="0"'
            out.append({"series": f"kafka_consumergroup_lag{{{labels}}}", "values": lag})
    for topic in plan.topics:
        rate = "0+10000x20" if topic.name == "aura360.user.events" else "0+200x20"
        out.append(
            {
                "series": f'kafka_topic_partition_current_offset{{topic="{topic.name}",partition="0"}}',
                "values": rate,
            }
        )
    return out


def expected(rules: list[dict[str, Any]], alert: str, *services: str) -> dict[str, Any]:
    labels = [
        rule["labels"] for rule in rules if rule["alert"] == alert and rule["labels"]["service"] in services
    ]
    return {"alertname": alert, "exp_alerts": [{"exp_labels": label} for label in labels]}


def test_promtool_fires_for_exactly_the_lagging_service_and_clears(promtool: str, tmp_path: Path) -> None:
    plan = load_plan(EXAMPLE, "local")
    groups = rule_groups(plan)
    for group in groups:  # annotations hold templates of $value; promtool compares them verbatim
        for rule in group["rules"]:
            rule.pop("annotations")
    rules = [rule for group in groups for rule in group["rules"]]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=True))
    at_8m = [
        expected(rules, "KafkaConsumerLagMessages", "context-aggregator"),  # api: pending, not 5m yet
        expected(rules, "KafkaConsumerGroupEmpty", "guardian"),
        expected(rules, "KafkaConsumerLagSeconds"),
    ]
    at_16m = [
        expected(rules, "KafkaConsumerLagMessages", "api"),  # context-aggregator caught up at 10m
        expected(rules, "KafkaConsumerLagSeconds", "api"),
        expected(rules, "KafkaConsumerGroupEmpty", "guardian"),
    ]
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series(plan),
                "alert_rule_test": [{"eval_time": "8m", **case} for case in at_8m]
                + [{"eval_time": "16m", **case} for case in at_16m],
            }
        ],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=True))
    result = run_promtool(promtool, "test", "rules", "tests.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {rule["alert"] for rule in rules} == EXPORTER_ALERTS


def test_a_migration_watches_the_mirror_of_topics_only_it_feeds(project: Project) -> None:
    # context-aggregator and the vectorizer moved; every other service is still on the source.
    moved = {"context-aggregator": "target", "context-vectorizer": "target", "vectordb-ingest": "target"}
    project.write("Pulumi.move.yaml", migrating_stack_file(moved))
    plan = project.plan("move")
    stalled = {rule["labels"]["topic"] for rule in alerts(plan) if rule["alert"] == "KafkaMirrorStalled"}
    producers_on_source = {
        topic
        for topic in (t.name for t in plan.topics)
        if any(topic in s.produces for s in plan.services)
        and all(s.cluster == "source" for s in plan.services if topic in s.produces)
    }
    assert stalled == producers_on_source and stalled
    # A topic that a moved producer writes grows on the target by itself: no mirror rule for it.
    moved_topics = {t for s in plan.services if s.cluster == "target" for t in s.produces}
    assert moved_topics and not (stalled & moved_topics)
    assert not any(rule["alert"] == "KafkaMirrorStalled" for rule in alerts(load_plan(EXAMPLE, "dev")))


def test_promtool_fires_when_the_source_grows_and_the_target_does_not(
    promtool: str, project: Project, tmp_path: Path
) -> None:
    project.write("Pulumi.move.yaml", migrating_stack_file({}))
    plan = project.plan("move")
    groups = [group for group in rule_groups(plan) if group["name"].endswith(".platform-mirror")]
    for rule in groups[0]["rules"]:
        rule.pop("annotations")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=True))
    copied, stalled, idle = "aura360.user.events", "aura360.guardian.requests", "aura360.context.aggregated"
    offsets = "kafka_topic_partition_current_offset"
    grows, flat = "0+100x30", "500x30"
    series = [
        {
            "series": f'{offsets}{{kafka_platform_cluster="source",topic="{copied}",partition="0"}}',
            "values": grows,
        },
        {"series": f'{offsets}{{topic="{copied}",partition="0"}}', "values": grows},
        {
            "series": f'{offsets}{{kafka_platform_cluster="source",topic="{stalled}",partition="0"}}',
            "values": grows,
        },
        {"series": f'{offsets}{{topic="{stalled}",partition="0"}}', "values": "0+100x10 1000x20"},
        {
            "series": f'{offsets}{{kafka_platform_cluster="source",topic="{idle}",partition="0"}}',
            "values": flat,
        },
        {"series": f'{offsets}{{topic="{idle}",partition="0"}}', "values": flat},
    ]
    labels = {"severity": "warning", "stack": "move", "topic": stalled}
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "12m", "alertname": "KafkaMirrorStalled", "exp_alerts": []},
                    {
                        "eval_time": "25m",
                        "alertname": "KafkaMirrorStalled",
                        "exp_alerts": [{"exp_labels": labels}],
                    },
                ],
            }
        ],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=True))
    result = run_promtool(promtool, "test", "rules", "tests.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
