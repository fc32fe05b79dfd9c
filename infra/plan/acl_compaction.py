"""`acls.mode: prefixed`: fewer ACL bindings through PREFIXED patterns, without granting any
planned topic more.

A prefix replaces a principal's literal topic grants only when every topic the plan has under
that prefix is already granted to it with that operation, and when no name Kafka Streams makes
at run time (`<application.id>-...`) falls under it. Such a grant also covers any topic created
later under the prefix outside topology.yaml, which is why validate warns about each one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from infra.plan.model import AclBinding, Operation


def dotted_prefixes(name: str) -> list[str]:
    """``a.b.c`` -> ``["a.", "a.b."]``: dot-delimited prefixes, shortest first."""
    parts = name.split(".")
    return [".".join(parts[:end]) + "." for end in range(1, len(parts))]


def compact_acls(
    acls: Iterable[AclBinding], topic_names: Iterable[str], runtime_prefixes: Iterable[str] = ()
) -> list[AclBinding]:
    """``acls`` with literal topic grants folded into PREFIXED ones where that is exact.

    ``topic_names``: every topic the plan has; ``runtime_prefixes``: prefixes of topics
    created at run time (Streams internal topics), which a compacted prefix must not reach.
    """
    under: dict[str, set[str]] = defaultdict(set)
    for name in topic_names:
        for prefix in dotted_prefixes(name):
            under[prefix].add(name)
    runtime = list(runtime_prefixes)

    granted: dict[tuple[str, str, Operation], set[str]] = defaultdict(set)
    compacted: list[AclBinding] = []
    for acl in acls:
        if acl.resource_type == "TOPIC" and acl.pattern_type == "LITERAL":
            granted[(acl.principal, acl.service, acl.operation)].add(acl.resource_name)
        else:
            compacted.append(acl)

    for (principal, service, operation), names in sorted(granted.items()):
        remaining = set(names)
        for name in sorted(names):
            if name not in remaining:
                continue
            for prefix in dotted_prefixes(name):
                covered = under[prefix]
                reaches_runtime = any(other.startswith(prefix) for other in runtime)
                if len(covered) > 1 and covered <= remaining and not reaches_runtime:
                    compacted.append(_topic_binding(principal, service, operation, prefix, "PREFIXED"))
                    remaining -= covered
                    break
        compacted += [
            _topic_binding(principal, service, operation, name, "LITERAL") for name in sorted(remaining)
        ]
    return sorted(compacted, key=lambda acl: acl.sort_key)


def _topic_binding(principal: str, service: str, operation: Operation, name: str, pattern: str) -> AclBinding:
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


def topics_granted(
    bindings: Iterable[AclBinding], topic_names: Iterable[str], principal: str, operation: str
) -> set[str]:
    """Which of ``topic_names`` a principal may use for ``operation`` under ``bindings``."""
    names = list(topic_names)
    result: set[str] = set()
    for binding in bindings:
        if (
            binding.principal != principal
            or binding.operation != operation
            or binding.resource_type != "TOPIC"
        ):
            continue
        for name in names:
            if (binding.pattern_type == "LITERAL" and name == binding.resource_name) or (
                binding.pattern_type == "PREFIXED" and name.startswith(binding.resource_name)
            ):
                result.add(name)
    return result
