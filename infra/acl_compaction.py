"""Fewer ACL bindings through PREFIXED patterns, without granting any declared topic more.

A prefix replaces a principal's literal topic grants only when every topic the topology
declares under that prefix is already granted to it with that operation. Such a grant would
also cover a topic added under the prefix later, so compaction is an analysis (for clusters
near Confluent's ACL caps), not what the platform deploys by default.
"""

from __future__ import annotations

from collections import defaultdict

from infra.plan import AclBinding, Plan


def _prefixes(name: str) -> list[str]:
    """``a.b.c`` -> ``["a.", "a.b."]``: dot-delimited prefixes, shortest first."""
    parts = name.split(".")
    return [".".join(parts[:end]) + "." for end in range(1, len(parts))]


def compact_acls(plan: Plan) -> list[AclBinding]:
    """The plan's bindings with topic grants folded into PREFIXED ones where that is exact."""
    all_topics = [topic.name for topic in plan.topics]
    under: dict[str, set[str]] = defaultdict(set)
    for name in all_topics:
        for prefix in _prefixes(name):
            under[prefix].add(name)

    granted: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    compacted: list[AclBinding] = []
    for acl in plan.acls:
        if acl.resource_type == "TOPIC":
            granted[(acl.principal, acl.service, acl.operation)].add(acl.resource_name)
        else:
            compacted.append(acl)

    for (principal, service, operation), names in sorted(granted.items()):
        remaining = set(names)
        for name in sorted(names):
            if name not in remaining:
                continue
            for prefix in _prefixes(name):
                covered = under[prefix]
                if len(covered) > 1 and covered <= remaining:
                    compacted.append(_topic_binding(principal, service, operation, prefix, "PREFIXED"))
                    remaining -= covered
                    break
        compacted += [
            _topic_binding(principal, service, operation, name, "LITERAL") for name in sorted(remaining)
        ]
    return compacted


def _topic_binding(principal: str, service: str, operation: str, name: str, pattern: str) -> AclBinding:
    return AclBinding.model_validate(
        {
            "principal": principal,
            "service": service,
            "resource_type": "TOPIC",
            "resource_name": name,
            "pattern_type": pattern,
            "operation": operation,
        }
    )


def topics_granted(bindings: list[AclBinding], plan: Plan, principal: str, operation: str) -> set[str]:
    """Which declared topics a principal may use for ``operation`` under ``bindings``."""
    result: set[str] = set()
    for binding in bindings:
        if (
            binding.principal != principal
            or binding.operation != operation
            or binding.resource_type != "TOPIC"
        ):
            continue
        for topic in plan.topics:
            if (binding.pattern_type == "LITERAL" and topic.name == binding.resource_name) or (
                binding.pattern_type == "PREFIXED" and topic.name.startswith(binding.resource_name)
            ):
                result.add(topic.name)
    return result
