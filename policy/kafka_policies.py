"""CrossGuard validators for kafka-platform stacks, importable and testable on their own.

Each validator takes Pulumi's ResourceValidationArgs (resource_type, props, urn, opts) and a
`report_violation(message)` callback. Props are the engine's camelCase input names.

During a preview some inputs are not known yet (a Confluent ACL's principal is the id of a
service account still to be created; a ConfigMap's bootstrap address is the cluster's). Reading
one raises pulumi_policy's UnknownValueError, and the SDK then skips the whole policy with an
advisory "can't run policy ... during preview". So every field is read through `Fields`: each
known field is checked, and only afterwards the policy reports which ones could not be.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pulumi_policy import ResourceValidationPolicy
from pulumi_policy.proxy import UnknownValueError

ReportViolation = Callable[..., None]

CONFLUENT_TOPIC = "confluentcloud:index/kafkaTopic:KafkaTopic"
KAFKA_TOPIC = "kafka:index/topic:Topic"
CONFLUENT_ACL = "confluentcloud:index/kafkaAcl:KafkaAcl"
KAFKA_ACL = "kafka:index/acl:Acl"
ROLE_BINDING = "confluentcloud:index/roleBinding:RoleBinding"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
# The grouped resources of `kafka` and `msk` stacks (infra/program/kafka_admin.py): a family of
# topics, and one service's ACLs (keys "User:<principal> <OPERATION> <TYPE> <name>[*]").
GROUPED_TOPICS = "pulumi-python:dynamic/kafka:Topics"
GROUPED_ACCESS = "pulumi-python:dynamic/kafka:ServiceAccess"
TOPICS = {CONFLUENT_TOPIC, KAFKA_TOPIC}
ACLS = {CONFLUENT_ACL, KAFKA_ACL}
MUST_STAY_PROTECTED = TOPICS | {
    GROUPED_TOPICS,
    GROUPED_ACCESS,
    "confluentcloud:index/kafkaCluster:KafkaCluster",
    "confluentcloud:index/environment:Environment",
    "confluentcloud:index/serviceAccount:ServiceAccount",
    "aws:msk/cluster:Cluster",
    "aws:kms/key:Key",
}
# A migration's own resources (infra/program/migration_source.py and the mirror principal on the
# target) end with the migration; a preflight guards that on protected stacks instead.
MIGRATION_COMPONENT = "kafka-platform:kafka:MigrationSource$"
MIRROR_ACCESS_NAME = "access-platform-mirror"
# Roles on Kafka data: bound to named topics, groups or transactional ids, never a whole cluster.
KAFKA_RESOURCE_ROLES = frozenset({"DeveloperRead", "DeveloperWrite", "DeveloperManage", "ResourceOwner"})
KAFKA_RESOURCE_SEGMENTS = ("topic=", "group=", "transactional-id=")
# Kafka Connect names a sink connector's group "connect-<connector name>".
CONNECT_GROUP_PREFIX = "connect-"
PRODUCTION_STACKS = frozenset({"prod", "production"})
CONFLUENT_REPLICATION = 3
MIN_REPLICATION = 3
MIN_INSYNC_REPLICAS = 2

_PR_STACK = re.compile(r"^pr-\d+$")
_CREDENTIAL_KEY = re.compile(r"(PASSWORD|SECRET|TOKEN|API_?KEY|PRIVATE_KEY|CREDENTIAL)", re.IGNORECASE)
_CREDENTIAL_VALUE = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key id
    # e.g. a JAAS config line; not one that reads the password through a config provider
    # (`password="${env:MIRROR_SOURCE_PASSWORD}"`, MirrorMaker 2's properties).
    re.compile(r"password\s*=\s*(?!\"?\$\{)", re.IGNORECASE),
    re.compile(r"^[A-Za-z0-9+/]{64}$"),  # Confluent Cloud API secret shape
]

# The two providers' names for the same ACL fields.
_ACL_FIELDS = {
    CONFLUENT_ACL: ("principal", "resourceType", "resourceName", "operation"),
    KAFKA_ACL: ("aclPrincipal", "aclResourceType", "aclResourceName", "aclOperation"),
}


class Unknown:
    """Stands for a value the engine does not know yet (preview)."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = Unknown()


class Fields:
    """A resource's properties read one by one; unknown values are recorded, not raised."""

    def __init__(self, props: Any) -> None:
        self._props = props
        self.unknown: list[str] = []
        self._first_unknown: UnknownValueError | None = None

    def get(self, *path: str, default: Any = None) -> Any:
        """The value at ``path`` (nested keys), ``default`` when absent, UNKNOWN when not known yet."""
        node = self._props
        try:
            for key in path:
                node = node.get(key) if node is not None else None
        except UnknownValueError as error:
            self.unknown.append(".".join(path))
            self._first_unknown = self._first_unknown or error
            return UNKNOWN
        return default if node is None else node

    def items(self, *path: str) -> Iterator[tuple[str, Any]]:
        """Entries of the mapping at ``path``: every known one, each unknown one as UNKNOWN."""
        mapping = self.get(*path, default={})
        if mapping is UNKNOWN:
            return
        for key in sorted(mapping):
            yield key, self.get(*path, key)

    def finish(self) -> None:
        """After every known field was checked: name the ones that could not be (preview only)."""
        if self._first_unknown is not None:
            fields = ", ".join(f".{path}" for path in self.unknown)
            self._first_unknown.message = (
                f"{fields} can't be known during preview (checked at `pulumi up`); every other field passed"
            )
            raise self._first_unknown


def topics_of(args: Any) -> Iterator[tuple[str, Fields]]:
    """Each topic a resource manages, as (how a violation names it, its fields in the per-topic
    resources' layout): the resource itself, or every topic of a grouped `Topics`."""
    if args.resource_type in TOPICS:
        yield "", Fields(args.props)
    elif args.resource_type == GROUPED_TOPICS:
        for name, spec in Fields(args.props).items("topics"):
            if spec is not UNKNOWN:
                props = {
                    "name": name,
                    "replicationFactor": spec.get("replication_factor"),
                    "config": spec.get("config") or {},
                }
                yield f"topic {name}: ", Fields(props)


@dataclass(frozen=True)
class Grant:
    label: str  # how a violation names it ("" when the resource is the grant)
    principal: Any
    resource_type: Any
    resource_name: Any
    operation: Any


def grants_of(args: Any, fields: Fields) -> Iterator[Grant]:
    """Each ACL a resource manages: the resource itself, or every grant of a `ServiceAccess`."""
    if args.resource_type in ACLS:
        principal_key, type_key, name_key, operation_key = _ACL_FIELDS[args.resource_type]
        yield Grant(
            "",
            fields.get(principal_key, default=""),
            fields.get(type_key, default=""),
            fields.get(name_key, default=""),
            fields.get(operation_key, default=""),
        )
    elif args.resource_type == GROUPED_ACCESS:
        for text, _ in fields.items("acls"):
            principal, operation, resource_type, name = text.split(" ", 3)
            yield Grant(f"grant '{text}': ", principal, resource_type, name.removesuffix("*"), operation)


def stack_of(urn: str) -> str:
    """``urn:pulumi:<stack>::<project>::<type>::<name>`` -> ``<stack>``."""
    return urn.split("::", 1)[0].rsplit(":", 1)[-1]


def is_production(urn: str) -> bool:
    """Stacks named prod, production or prod-<variant> (e.g. prod-msk)."""
    stack = stack_of(urn)
    return stack in PRODUCTION_STACKS or stack.startswith("prod-")


def prod_topic_durability(args: Any, report_violation: ReportViolation) -> None:
    if not is_production(args.urn):
        return
    checked = []
    for label, fields in topics_of(args):
        replication = fields.get("replicationFactor", default=CONFLUENT_REPLICATION)
        # The engine passes numbers as floats.
        if replication is not UNKNOWN and int(replication) < MIN_REPLICATION:
            report_violation(
                f"{label}production topics need replication >= {MIN_REPLICATION} (has {int(replication)})"
            )
        min_isr = fields.get("config", "min.insync.replicas")
        if min_isr is not UNKNOWN and (min_isr is None or int(min_isr) < MIN_INSYNC_REPLICAS):
            report_violation(
                f"{label}production topics need min.insync.replicas >= {MIN_INSYNC_REPLICAS} (has {min_isr})"
            )
        checked.append(fields)
    _finish(checked)


def topic_has_retention_or_compaction(args: Any, report_violation: ReportViolation) -> None:
    checked = []
    for label, fields in topics_of(args):
        cleanup = fields.get("config", "cleanup.policy", default="")
        retention = [fields.get("config", key) for key in ("retention.ms", "retention.bytes")]
        known = cleanup is not UNKNOWN and UNKNOWN not in retention
        if known and "compact" not in str(cleanup) and retention == [None, None]:
            report_violation(
                f"{label}topic sets neither a retention (retention.ms/bytes) nor cleanup.policy=compact"
            )
        checked.append(fields)
    _finish(checked)


def _finish(checked: list[Fields]) -> None:
    for fields in checked:
        fields.finish()


def acl_no_wildcards(args: Any, report_violation: ReportViolation) -> None:
    fields = Fields(args.props)
    for grant in grants_of(args, fields):
        principal = grant.principal
        if principal is not UNKNOWN and (principal == "*" or str(principal).endswith(":*")):
            report_violation(f"{grant.label}ACL grants to the wildcard principal '{principal}'")
        if grant.resource_name in {"*", ""}:
            report_violation(f"{grant.label}ACL applies to every resource ('*')")
    fields.finish()


def acl_never_all(args: Any, report_violation: ReportViolation) -> None:
    fields = Fields(args.props)
    for grant in grants_of(args, fields):
        if grant.operation is not UNKNOWN and str(grant.operation).upper() == "ALL":
            report_violation(f"{grant.label}ACL grants ALL operations; grant the specific operations instead")
    fields.finish()


def role_binding_names_its_resources(args: Any, report_violation: ReportViolation) -> None:
    if args.resource_type != ROLE_BINDING:
        return
    fields = Fields(args.props)
    crn = fields.get("crnPattern", default="")
    role = fields.get("roleName", default="")
    if crn is not UNKNOWN:
        segments = str(crn).split("/")
        if any(segment.endswith("=*") for segment in segments):
            report_violation(f"role binding on a wildcard CRN '{crn}': name the resource or a prefix of it")
        if (
            role is not UNKNOWN
            and role in KAFKA_RESOURCE_ROLES
            and not segments[-1].startswith(KAFKA_RESOURCE_SEGMENTS)
        ):
            report_violation(
                f"{role} bound to '{crn}', a whole cluster or more: bind it to topics, groups or ids"
            )
    fields.finish()


def _in_prefix(resource_type: str, name: str, prefix: str) -> bool:
    """Under the pr prefix; a group may also be a Connect sink's, "connect-<prefix>..."."""
    return name.startswith(prefix) or (
        resource_type.upper() == "GROUP" and name.startswith(CONNECT_GROUP_PREFIX + prefix)
    )


def pr_principal_stays_in_its_prefix(args: Any, report_violation: ReportViolation) -> None:
    stack = stack_of(args.urn)
    if not _PR_STACK.match(stack):
        return
    prefix = f"{stack}."
    fields = Fields(args.props)
    for grant in grants_of(args, fields):
        resource_type, resource_name = grant.resource_type, grant.resource_name
        checkable = UNKNOWN not in (resource_type, resource_name)
        if (
            checkable
            and str(resource_type).upper() != "CLUSTER"
            and not _in_prefix(str(resource_type), str(resource_name), prefix)
        ):
            report_violation(
                f"{grant.label}preview stack {stack} grants access to '{resource_name}' outside '{prefix}'"
            )
    if args.resource_type == ROLE_BINDING:
        crn = fields.get("crnPattern", default="")
        if crn is not UNKNOWN:
            resource_type, _, name = str(crn).rsplit("/", 1)[-1].partition("=")
            if not _in_prefix(resource_type, name, prefix):
                report_violation(f"preview stack {stack} binds a role on '{crn}' outside '{prefix}'")
    for _, topic in topics_of(args):
        name = topic.get("topicName" if args.resource_type == CONFLUENT_TOPIC else "name", default="")
        if name is not UNKNOWN and not str(name).startswith(prefix):
            report_violation(f"preview stack {stack} manages topic '{name}' outside '{prefix}'")
        topic.finish()
    fields.finish()


def config_map_has_no_credentials(args: Any, report_violation: ReportViolation) -> None:
    if args.resource_type != CONFIG_MAP:
        return
    fields = Fields(args.props)
    for key, value in fields.items("data"):
        if _CREDENTIAL_KEY.search(key):
            report_violation(f"ConfigMap key '{key}' looks like a credential; put it in a Secret")
        elif value is not UNKNOWN and any(pattern.search(str(value)) for pattern in _CREDENTIAL_VALUE):
            report_violation(f"ConfigMap value of '{key}' looks like a credential; put it in a Secret")
    fields.finish()


def protected_stays_protected(args: Any, report_violation: ReportViolation) -> None:
    migration = MIGRATION_COMPONENT in args.urn or args.urn.endswith(f"::{MIRROR_ACCESS_NAME}")
    if (
        args.resource_type in MUST_STAY_PROTECTED
        and is_production(args.urn)
        and not args.opts.protect
        and not migration
    ):
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
        "role-binding-no-wildcards",
        "Role bindings name Kafka resources (or prefixes), never a wildcard CRN or a whole cluster.",
        role_binding_names_its_resources,
    ),
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
