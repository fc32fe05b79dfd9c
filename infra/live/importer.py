"""A topology (and a stack's overrides and adoption list) from what a live cluster holds.

Pure: `live_cluster.read_cluster` reads the cluster, this module only maps. Whatever cannot be
expressed in topology.yaml is reported, never silently dropped.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from infra.live.live_cluster import LiveAcl, LiveCluster, LiveTopic
from infra.model.durations import format_retention
from infra.model.kafka_topic_configs import topic_config_problem
from infra.model.names import PLATFORM_ADMIN, dns_label_problem
from infra.model.settings import StackSettings
from infra.model.topology import Topology
from infra.plan.model import Plan

# Configs a topic's own fields (cleanup, retention) or the stack settings (min ISR) carry.
FIELD_CONFIGS = frozenset({"cleanup.policy", "retention.ms", "min.insync.replicas"})
_PREVIEW_TOPIC = re.compile(r"^pr-\d+\.")


@dataclass
class ImportResult:
    topology: dict[str, Any]
    report: list[str] = field(default_factory=list)  # what could not be mapped, and why


def import_topology(
    live: LiveCluster, domain: str, admin_principals: set[str], include: list[re.Pattern[str]] | None = None
) -> ImportResult:
    """Every topic (or those ``include`` matches), and a service per principal with grants on
    them, where its grants map onto the topology's terms."""
    report: list[str] = [f"skipped internal topic {name}" for name in live.internal_topics]
    topics: dict[str, Any] = {}
    keys: dict[str, str] = {}  # topic name -> key
    for name, topic in sorted(live.topics.items()):
        if include and not any(pattern.search(name) for pattern in include):
            continue
        if _PREVIEW_TOPIC.match(name):
            report.append(f"skipped topic {name}: it belongs to a pr-<n> preview")
            continue
        key = name.removeprefix(f"{domain}.") if name.startswith(f"{domain}.") else name
        keys[name] = key
        topics[key] = _topic_spec(topic, key, domain, report)

    services: dict[str, Any] = {}
    by_principal: dict[str, list[LiveAcl]] = defaultdict(list)
    for acl in live.acls:
        by_principal[acl.principal].append(acl)
    for principal, acls in sorted(by_principal.items()):
        if include and not any(acl.resource_type == "TOPIC" and acl.resource_name in keys for acl in acls):
            continue  # no grant on an imported topic: another team's principal
        user = principal.removeprefix("User:")
        if user in admin_principals or user.endswith(f".{PLATFORM_ADMIN}"):
            report.append(f"skipped {principal}: the admin identity ({len(acls)} ACLs)")
            continue
        service = _service_name(user, domain)
        if service is None:
            report.append(f"skipped {principal}: no service name can be made of it ({len(acls)} ACLs)")
            continue
        spec = _service_spec(_Principal(principal, service, domain), acls, keys, report)
        if spec is not None:
            services[service] = spec

    topology: dict[str, Any] = {"domain": domain, "topics": topics, "services": services}
    return ImportResult(topology=topology, report=report)


def _topic_spec(topic: LiveTopic, key: str, domain: str, report: list[str]) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if topic.name != f"{domain}.{key}":
        spec["name"] = topic.name
    spec["partitions"] = topic.partitions
    cleanup = ",".join(sorted(topic.effective.get("cleanup.policy", "delete").split(",")))
    if cleanup != "delete":
        spec["cleanup"] = cleanup
    if "delete" in cleanup and "retention.ms" in topic.effective:
        # The value in force, even where it is the broker's default: the plan always sets one.
        spec["retention"] = format_retention(int(topic.effective["retention.ms"]))
    config: dict[str, str] = {}
    for config_key, value in sorted(topic.config.items()):
        if config_key in FIELD_CONFIGS:
            continue
        if problem := topic_config_problem(config_key):
            report.append(f"topic {topic.name}: config {config_key}={value} left out ({problem})")
            continue
        config[config_key] = value
    if config:
        spec["config"] = config
    return spec


def _service_name(user: str, domain: str) -> str | None:
    """``<domain>.<stack>.<service>`` (this platform's principals) gives ``<service>``; another
    name is used as it is when it is a valid service name, else lower-cased with '-'."""
    parts = user.split(".")
    if len(parts) == 3 and parts[0] == domain and not dns_label_problem(parts[2], max_length=40):
        return parts[2]
    candidate = re.sub(r"[^a-z0-9-]+", "-", user.lower()).strip("-")
    if candidate and candidate[0].isdigit():
        candidate = f"svc-{candidate}"
    return None if dns_label_problem(candidate, max_length=40) else candidate


@dataclass(frozen=True)
class _Principal:
    principal: str  # "User:<name>"
    service: str
    domain: str


def _service_spec(
    who: _Principal, acls: list[LiveAcl], keys: dict[str, str], report: list[str]
) -> dict[str, Any] | None:
    principal, name, domain = who.principal, who.service, who.domain
    produces: set[str] = set()
    consumes: set[str] = set()
    groups: list[tuple[str, str]] = []  # (name, pattern)
    transactional: list[str] = []
    internal_prefixes: set[str] = set()
    idempotent = False
    for acl in acls:
        where = f"{principal}: {acl}"
        if acl.permission != "ALLOW" or acl.resource_name == "*" or acl.host != "*":
            report.append(f"not mapped {where} (only ALLOW on named resources from any host maps)")
        elif acl.resource_type == "TOPIC" and acl.pattern_type == "LITERAL" and acl.resource_name in keys:
            if acl.operation in {"READ", "WRITE"}:
                (consumes if acl.operation == "READ" else produces).add(keys[acl.resource_name])
            elif acl.operation != "DESCRIBE":
                report.append(f"not mapped {where}")
        elif (
            acl.resource_type == "TOPIC"
            and acl.pattern_type == "PREFIXED"
            and acl.resource_name.endswith("-")
        ):
            internal_prefixes.add(acl.resource_name)  # a Kafka Streams application's own topics
        elif acl.resource_type == "GROUP" and acl.operation == "READ":
            groups.append((acl.resource_name, acl.pattern_type))
        elif (
            acl.resource_type == "TRANSACTIONAL_ID"
            and acl.operation == "WRITE"
            and acl.pattern_type == "PREFIXED"
        ):
            transactional.append(acl.resource_name)
        elif acl.resource_type == "CLUSTER" and acl.operation == "IDEMPOTENT_WRITE":
            idempotent = True
        elif acl.operation != "DESCRIBE":
            report.append(f"not mapped {where}")
    if not produces and not consumes:
        report.append(f"skipped {principal}: no grant on a topic it could produce or consume")
        return None

    spec: dict[str, Any] = {}
    default_group = f"{domain}.{name}"
    if len(internal_prefixes) == 1 and len(groups) == 1 and f"{groups[0][0]}-" in internal_prefixes:
        spec["kind"] = "streams"
        if groups[0][0] != default_group:
            spec["application_id"] = groups[0][0]
        groups = []
        if transactional == list(internal_prefixes):
            spec["transactional"] = True
            transactional = []
    elif internal_prefixes:
        report.append(f"not mapped {principal}: PREFIXED topic grants on {sorted(internal_prefixes)}")
    if produces:
        spec["produces"] = sorted(produces)
    if consumes:
        spec["consumes"] = sorted(consumes)
    for group, pattern in groups[:1]:
        stem = group.removesuffix(".") if pattern == "PREFIXED" else group
        if stem != default_group:
            spec["consumer_group"] = stem
        if pattern == "PREFIXED":
            spec["consumer_group_per_instance"] = True
    for extra, _ in groups[1:]:
        report.append(f"not mapped {principal}: a second group '{extra}' (one group per service)")
    if transactional:
        spec["transactional"] = True
        if transactional[0] != f"{domain}.{name}.":
            spec["transactional_id_prefix"] = transactional[0]
        for extra in transactional[1:]:
            report.append(f"not mapped {principal}: a second transactional id prefix '{extra}'")
    if idempotent:
        spec["idempotent"] = True
    return spec


def stack_overrides(
    live: LiveCluster, topology: Topology, settings: StackSettings
) -> dict[str, dict[str, int]]:
    """Per topic key: partitions, replication and min ISR where the live cluster differs from
    what the topology and the stack's defaults give (e.g. prod runs more partitions than dev)."""
    defaults = settings.topics.defaults
    overrides: dict[str, dict[str, int]] = {}
    for key, spec in sorted(topology.topics.items()):
        live_topic = live.topics.get(topology.topic_name(key))
        if live_topic is None:
            continue
        wanted: dict[str, int] = {}
        if live_topic.partitions != (spec.partitions or defaults.partitions):
            wanted["partitions"] = live_topic.partitions
        if live_topic.replication_factor != defaults.replication:
            wanted["replication"] = live_topic.replication_factor
        min_isr = live_topic.effective.get("min.insync.replicas")
        expected_min_isr = min(defaults.min_insync_replicas, live_topic.replication_factor)
        if live_topic.replication_factor > 1 and min_isr is not None and int(min_isr) != expected_min_isr:
            wanted["min_insync_replicas"] = int(min_isr)
        if wanted:
            overrides[key] = wanted
    return overrides


def adoption(live: LiveCluster, plan: Plan) -> dict[str, list[str]]:
    """What of the stack's plan already exists on the cluster: the `adopt` settings that make
    its first deployment import these instead of creating them."""
    topics = sorted(topic.name for topic in plan.topics if topic.name in live.topics)
    live_acls = {
        (acl.principal, acl.resource_type, acl.resource_name, acl.pattern_type, acl.operation)
        for acl in live.acls
        if acl.permission == "ALLOW" and acl.host == "*"
    }
    acls = sorted(
        acl.adoption_id
        for acl in plan.acls
        if (f"User:{acl.principal}", acl.resource_type, acl.resource_name, acl.pattern_type, acl.operation)
        in live_acls
    )
    principals = {principal.name for principal in plan.principals}
    return {"topics": topics, "acls": acls, "users": sorted(principals & set(live.users))}
