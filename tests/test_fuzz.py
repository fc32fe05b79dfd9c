"""Property-based tests: generated topologies and settings, valid and corrupted."""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra import cli
from infra.model.names import collision_key, env_var_suffix
from infra.model.stacks import ADMIN_PASSWORD_KEY, SETTINGS_KEY, checked_stack, settings_from_config
from infra.model.topology import topology_from_data
from infra.plan.model import Plan
from infra.plan.resolve import resolve_plan
from tests.project_files import ENCRYPTED

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

topic_keys = st.from_regex(r"[a-z][a-z0-9]{0,6}(\.[a-z][a-z0-9]{0,6})?", fullmatch=True)
service_names = st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4})?", fullmatch=True)


@st.composite
def topologies(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.lists(topic_keys, min_size=1, max_size=8, unique_by=(collision_key, env_var_suffix)))
    topics = {
        key: {
            "partitions": draw(st.integers(1, 12)),
            "retention": draw(st.sampled_from(["1h", "7d", "infinite", 3_600_000])),
            "cleanup": draw(st.sampled_from(["delete", "compact", "compact,delete"])),
        }
        for key in keys
    }
    names = draw(st.lists(service_names, min_size=1, max_size=6, unique=True))
    services: dict[str, Any] = {}
    for name in names:
        produces = draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys)))
        consumes = draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys)))
        if not produces and not consumes:
            consumes = [keys[0]]
        services[name] = {
            "produces": produces,
            "consumes": consumes,
            "transactional": bool(produces) and draw(st.booleans()),
            "idempotent": draw(st.booleans()),
            "consumer_group_per_instance": bool(consumes) and draw(st.booleans()),
        }
    produced = sorted({t for s in services.values() for t in s["produces"]})
    events = {}
    if produced:
        for index in range(draw(st.integers(0, 3))):
            topic = draw(st.sampled_from(produced))
            events[f"event{index}.happened"] = {"topic": topic, "transport": "kafka"}
            # A compacted topic refuses records without a key; elsewhere a key is optional.
            if "compact" in str(topics[topic]["cleanup"]) or draw(st.booleans()):
                events[f"event{index}.happened"]["key"] = "{id}"
    return {
        "domain": draw(st.sampled_from(["aura360", "vibe", "nexus-x"])),
        "topics": topics,
        "services": services,
        "events": events,
    }


@st.composite
def stack_settings(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    stack = draw(st.sampled_from(["dev", "prod", "local", "pr-1", "pr-42", "pr-999"]))
    providers = ["confluent", "kafka"] + ([] if stack.startswith("pr-") else ["msk"])
    provider = "local" if stack == "local" else draw(st.sampled_from(providers))
    production = stack == "prod"
    replication = 1 if provider == "local" else 3
    backend = draw(st.sampled_from(["kafka", "celery", "disabled"]))
    sections: dict[str, dict[str, Any]] = {
        "confluent": {"confluent": {"cloud": "AWS", "region": "us-east-1"}},
        "msk": {
            "msk": {
                "kafka_version": draw(st.sampled_from(["2.6.2", "3.6.0"])),
                "broker_count": 3,
                "instance_type": "kafka.m5.large",
                "subnet_ids": ["subnet-a", "subnet-b", "subnet-c"],
                "security_group_ids": ["sg-1"],
            }
        },
        "kafka": {
            "cluster": {
                "bootstrap_servers": ["kafka-1:9093"],
                "admin": {"username": "admin"},
                **({"broker_version": draw(st.sampled_from(["2.6", "3.7"]))} if draw(st.booleans()) else {}),
            }
        },
        "local": {},
    }
    data = {
        "environment": stack if not stack.startswith("pr-") else "dev",
        "production": production,
        "kafka": {"provider": provider, **sections[provider]},
        "topics": {
            "defaults": {
                "replication": replication,
                "min_insync_replicas": min(2, replication),
                "max_partitions": draw(st.none() | st.integers(1, 6)),
            }
        },
        "messaging": {
            "backend": backend,
            "dual_write": (dual_write := backend != "disabled" and draw(st.booleans())),
            # A Celery backend and a dual write need its broker; a stack may also set one ahead of a flip.
            **(
                {"celery_broker": {"url": "redis://redis.internal:6379/1"}}
                if backend == "celery" or dual_write or draw(st.booleans())
                else {}
            ),
        },
        "kubernetes": {"namespace": "team"},
    }
    return stack, data


def plan_for(topology_data: dict[str, Any], stack: str, settings_data: dict[str, Any]) -> Plan:
    topology = topology_from_data(topology_data)
    config: dict[str, Any] = {SETTINGS_KEY: settings_data, ADMIN_PASSWORD_KEY: {"secure": ENCRYPTED}}
    parsed = settings_from_config(config, f"Pulumi.{stack}.yaml")
    return resolve_plan(topology, checked_stack(stack, f"Pulumi.{stack}.yaml", parsed, topology, config))


def old_broker(settings_data: dict[str, Any]) -> bool:
    kafka = settings_data["kafka"]
    version = (kafka.get("msk") or {}).get("kafka_version") or (kafka.get("cluster") or {}).get(
        "broker_version"
    )
    return version is not None and version.startswith("2.6")


def expected_grants(
    topology: dict[str, Any], plan: Plan, service: str, settings_data: dict[str, Any]
) -> set[tuple[str, str, str, str]]:
    """Recomputed from the topology: READ/WRITE only (they imply DESCRIBE), prefixes per instance."""
    spec = topology["services"][service]
    prefix, domain = plan.name_prefix, topology["domain"]
    grants = {("TOPIC", f"{prefix}{domain}.{key}", "LITERAL", "WRITE") for key in spec["produces"]}
    grants |= {("TOPIC", f"{prefix}{domain}.{key}", "LITERAL", "READ") for key in spec["consumes"]}
    if spec["consumes"] and spec["consumer_group_per_instance"]:
        grants.add(("GROUP", f"{prefix}{domain}.{service}.", "PREFIXED", "READ"))
    elif spec["consumes"]:
        grants.add(("GROUP", f"{prefix}{domain}.{service}", "LITERAL", "READ"))
    if spec["transactional"]:
        grants.add(("TRANSACTIONAL_ID", f"{prefix}{domain}.{service}.", "PREFIXED", "WRITE"))
    if old_broker(settings_data) and any(grant[3] == "WRITE" for grant in grants):  # every producer
        grants.add(("CLUSTER", "kafka-cluster", "LITERAL", "IDEMPOTENT_WRITE"))
    return grants


@FUZZ
@given(topologies(), stack_settings())
def test_valid_input_always_resolves_to_a_plan_whose_invariants_hold(
    topology: dict[str, Any], stack_and_settings: tuple[str, dict[str, Any]]
) -> None:
    stack, settings_data = stack_and_settings
    plan = plan_for(topology, stack, settings_data)
    topic_names = {t.name for t in plan.topics}
    assert len(topic_names) == len(plan.topics) == len(topology["topics"])
    assert len({collision_key(name) for name in topic_names}) == len(topic_names), "collision-free"
    assert len({p.name for p in plan.principals}) == len(plan.principals)
    for name in topic_names:
        assert name.startswith(plan.name_prefix)
    groups = {s.consumer_group for s in plan.services if s.consumer_group}
    groups |= {s.consumer_group_prefix for s in plan.services if s.consumer_group_prefix}
    tids = {s.transactional_id_prefix for s in plan.services if s.transactional_id_prefix}
    for acl in plan.acls:
        known = {
            "TOPIC": topic_names,
            "GROUP": groups,
            "TRANSACTIONAL_ID": tids,
            "CLUSTER": {"kafka-cluster"},
        }
        assert acl.resource_name in known[acl.resource_type], acl
        assert acl.operation != "DESCRIBE", "implied by READ and WRITE"
        if acl.resource_type != "CLUSTER":
            assert acl.resource_name.startswith(plan.name_prefix)
        if acl.pattern_type == "PREFIXED":
            # A prefix never reaches another service's group, id or topic.
            others = [s for s in plan.services if s.name != acl.service]
            for other in others:
                names = (other.consumer_group, other.consumer_group_prefix, other.transactional_id_prefix)
                for granted_elsewhere in names:
                    assert granted_elsewhere is None or not granted_elsewhere.startswith(acl.resource_name), (
                        acl,
                        other.name,
                    )
    for service in plan.services:
        actual = {
            (a.resource_type, a.resource_name, a.pattern_type, a.operation)
            for a in plan.acls
            if a.service == service.name
        }
        assert actual == expected_grants(topology, plan, service.name, settings_data)
        assert service.env["MESSAGING_BACKEND"] == settings_data["messaging"]["backend"]
    caps = [settings_data["topics"]["defaults"]["max_partitions"], 1 if stack.startswith("pr-") else None]
    for topic in plan.topics:
        assert all(cap is None or topic.partitions <= cap for cap in caps)
    assert plan.to_json() == plan_for(topology, stack, settings_data).to_json(), "deterministic"


junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 300),
    st.text(max_size=6),
    st.lists(st.integers(-1, 3), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def corrupted(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[str, Any]]:
    topology = draw(topologies())
    stack, settings_data = draw(stack_settings())
    target = draw(st.sampled_from(["topology", "settings"]))
    document = topology if target == "topology" else settings_data
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(document)))
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add-unknown"]))
        if action == "replace":
            parent[path[-1]] = draw(junk)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.from_regex(r"[a-z_]{1,8}", fullmatch=True))] = draw(junk)
    return stack, topology, settings_data


PROBLEM_LINE = re.compile(r"^(topology\.yaml|Pulumi\.[a-z0-9-]+\.yaml|stack '[^']+'): \S.*: \S")


@FUZZ
@given(corrupted())
def test_corrupted_input_gives_exit_2_with_key_paths_never_a_traceback(
    case: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    stack, topology, settings_data = case
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "Pulumi.yaml").write_text("name: kafka-platform\nruntime: python\n")
        (root / "topology.yaml").write_text(yaml.safe_dump(topology))
        stack_file = "dev" if stack.startswith("pr-") else stack
        (root / f"Pulumi.{stack_file}.yaml").write_text(
            yaml.safe_dump({"config": {SETTINGS_KEY: settings_data}})
        )
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = cli.main(["--project-dir", directory, "plan", "--stack", stack, "--format", "json"])
    assert code in (cli.EXIT_OK, cli.EXIT_CONFIG_ERROR)
    if code == cli.EXIT_CONFIG_ERROR:
        lines = stderr.getvalue().splitlines()
        assert lines, "an error is always explained"
        assert all(PROBLEM_LINE.match(line) for line in lines), lines
        assert stdout.getvalue() == ""
