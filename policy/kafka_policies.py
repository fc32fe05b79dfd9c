"""CrossGuard validators for kafka-platform stacks, importable and testable on their own.

Each validator takes Pulumi's ResourceValidationArgs (resource_type, props, urn, opts) and a
`report_violation(message)` callback. Props are the engine's camelCase input names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pulumi_policy import ResourceValidationPolicy

ReportViolation = Callable[..., None]

CONFLUENT_TOPIC = "confluentcloud:index/kafkaTopic:KafkaTopic"
KAFKA_TOPIC = "kafka:index/topic:Topic"
CONFLUENT_ACL = "confluentcloud:index/kafkaAcl:KafkaAcl"
KAFKA_ACL = "kafka:index/acl:Acl"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
TOPICS = {CONFLUENT_TOPIC, KAFKA_TOPIC}
ACLS = {CONFLUENT_ACL, KAFKA_ACL}
MUST_STAY_PROTECTED = TOPICS | {
    "confluentcloud:index/kafkaCluster:KafkaCluster",
    "confluentcloud:index/environment:Environment",
    "confluentcloud:index/serviceAccount:ServiceAccount",
    "aws:msk/cluster:Cluster",
    "aws:kms/key:Key",
}
PRODUCTION_STACKS = frozenset({"prod", "production"})
CONFLUENT_REPLICATION = 3
MIN_REPLICATION = 3
MIN_INSYNC_REPLICAS = 2

_PR_STACK = re.compile(r"^pr-\d+$")
_CREDENTIAL_KEY = re.compile(r"(PASSWORD|SECRET|TOKEN|API_?KEY|PRIVATE_KEY|CREDENTIAL)", re.IGNORECASE)
_CREDENTIAL_VALUE = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"password\s*=", re.IGNORECASE),  # e.g. a JAAS config line
    re.compile(r"^[A-Za-z0-9+/]{64}$"),  # Confluent Cloud API secret shape
]


def stack_of(urn: str) -> str:
    """``urn:pulumi:<stack>::<project>::<type>::<name>`` -> ``<stack>``."""
    return urn.split("::", 1)[0].rsplit(":", 1)[-1]


def is_production(urn: str) -> bool:
    """Stacks named prod, production or prod-<variant> (e.g. prod-msk)."""
    stack = stack_of(urn)
    return stack in PRODUCTION_STACKS or stack.startswith("prod-")


def _acl_fields(resource_type: str, props: Any) -> tuple[str, str, str, str]:
    """(principal, resource type, resource name, operation) of either provider's ACL."""
    if resource_type == CONFLUENT_ACL:
        return (
            props.get("principal", ""),
            props.get("resourceType", ""),
            props.get("resourceName", ""),
            props.get("operation", ""),
        )
    return (
        props.get("aclPrincipal", ""),
        props.get("aclResourceType", ""),
        props.get("aclResourceName", ""),
        props.get("aclOperation", ""),
    )


def prod_topic_durability(args: Any, report_violation: ReportViolation) -> None:
    if args.resource_type not in TOPICS or not is_production(args.urn):
        return
    props = args.props
    replication = props.get("replicationFactor", CONFLUENT_REPLICATION)
    if int(replication) < MIN_REPLICATION:
        report_violation(f"production topics need replication >= {MIN_REPLICATION} (has {replication})")
    min_isr = (props.get("config") or {}).get("min.insync.replicas")
    if min_isr is None or int(min_isr) < MIN_INSYNC_REPLICAS:
        report_violation(
            f"production topics need min.insync.replicas >= {MIN_INSYNC_REPLICAS} (has {min_isr})"
        )


def topic_has_retention_or_compaction(args: Any, report_violation: ReportViolation) -> None:
    if args.resource_type not in TOPICS:
        return
    config = args.props.get("config") or {}
    if "compact" in str(config.get("cleanup.policy", "")):
        return
    if "retention.ms" not in config and "retention.bytes" not in config:
        report_violation("topic sets neither a retention (retention.ms/bytes) nor cleanup.policy=compact")


def acl_no_wildcards(args: Any, report_violation: ReportViolation) -> None:
    if args.resource_type not in ACLS:
        return
    principal, _, resource_name, _ = _acl_fields(args.resource_type, args.props)
    if principal.endswith(":*") or principal == "*":
        report_violation(f"ACL grants to the wildcard principal '{principal}'")
    if resource_name in {"*", ""}:
        report_violation("ACL applies to every resource ('*')")


def acl_never_all(args: Any, report_violation: ReportViolation) -> None:
    if args.resource_type not in ACLS:
        return
    operation = _acl_fields(args.resource_type, args.props)[3]
    if operation.upper() == "ALL":
        report_violation("ACL grants ALL operations; grant the specific operations instead")


def pr_principal_stays_in_its_prefix(args: Any, report_violation: ReportViolation) -> None:
    stack = stack_of(args.urn)
    if not _PR_STACK.match(stack):
        return
    prefix = f"{stack}."
    if args.resource_type in ACLS:
        _, resource_type, resource_name, _ = _acl_fields(args.resource_type, args.props)
        if resource_type.upper() != "CLUSTER" and not resource_name.startswith(prefix):
            report_violation(f"preview stack {stack} grants access to '{resource_name}' outside '{prefix}'")
    if args.resource_type in TOPICS:
        name = args.props.get("topicName") or args.props.get("name", "")
        if not name.startswith(prefix):
            report_violation(f"preview stack {stack} manages topic '{name}' outside '{prefix}'")


def config_map_has_no_credentials(args: Any, report_violation: ReportViolation) -> None:
    if args.resource_type != CONFIG_MAP:
        return
    for key, value in sorted((args.props.get("data") or {}).items()):
        if _CREDENTIAL_KEY.search(key):
            report_violation(f"ConfigMap key '{key}' looks like a credential; put it in a Secret")
        elif any(pattern.search(str(value)) for pattern in _CREDENTIAL_VALUE):
            report_violation(f"ConfigMap value of '{key}' looks like a credential; put it in a Secret")


def protected_stays_protected(args: Any, report_violation: ReportViolation) -> None:
    if args.resource_type in MUST_STAY_PROTECTED and is_production(args.urn) and not args.opts.protect:
        report_violation(f"{args.resource_type} must be protected in production")


def _policy(
    name: str, description: str, validate: Callable[[Any, ReportViolation], None]
) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(name=name, description=description, validate=validate)


POLICIES = [
    _policy(
        "prod-topic-durability",
        "Production topics: replication >= 3, min.insync.replicas >= 2.",
        prod_topic_durability,
    ),
    _policy(
        "topic-retention-or-compaction",
        "Every topic has a retention or is compacted.",
        topic_has_retention_or_compaction,
    ),
    _policy("acl-no-wildcards", "No ACL for a wildcard principal or a wildcard resource.", acl_no_wildcards),
    _policy("acl-never-all", "No ACL grants the ALL operation.", acl_never_all),
    _policy(
        "pr-principal-in-prefix",
        "A pr-<n> stack only touches names under 'pr-<n>.'.",
        pr_principal_stays_in_its_prefix,
    ),
    _policy(
        "configmap-no-credentials",
        "Kubernetes ConfigMaps carry no credential-looking values.",
        config_map_has_no_credentials,
    ),
    _policy(
        "protected-stays-protected",
        "Clusters, topics and service accounts stay protected in production.",
        protected_stays_protected,
    ),
]
