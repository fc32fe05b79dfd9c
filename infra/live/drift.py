"""A stack's plan against what its cluster really holds, including what Pulumi's state cannot
show: topics and ACLs made by hand, and changes made outside Pulumi.

Pure: `live_cluster.read_cluster` reads the cluster, this module compares.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import avro.errors
import avro.schema

from infra.live.live_cluster import LiveAcl, LiveCluster, LiveTopic
from infra.live.schema_registry import LiveSubject
from infra.plan.model import AclBinding, Plan, PlannedTopic

_PREVIEW_TOPIC = re.compile(r"^pr-\d+\.")


@dataclass(frozen=True, order=True)
class TopicDifference:
    topic: str
    setting: str  # "partitions", "replication_factor" or a config key
    planned: str
    live: str


@dataclass(frozen=True, order=True)
class SubjectDifference:
    subject: str
    setting: str  # "schema" or "compatibility"
    planned: str
    live: str


@dataclass
class DriftReport:
    stack: str
    cluster: str
    missing_topics: list[str] = field(default_factory=list)
    extra_topics: list[str] = field(default_factory=list)  # on the cluster, not in the plan: left alone
    different_topics: list[TopicDifference] = field(default_factory=list)
    missing_acls: list[str] = field(default_factory=list)
    extra_acls: list[str] = field(default_factory=list)  # the plan's principals, granted more
    foreign_acls: list[str] = field(default_factory=list)  # other principals on the plan's topics
    # Users and grants named as this stack's principals (`<domain>.<stack>.<service>`) for a
    # service the plan no longer has: a removed service's credential that still works.
    leftover_principals: list[str] = field(default_factory=list)
    # Schema Registry subjects of the plan not registered, or whose latest schema or level differs.
    missing_subjects: list[str] = field(default_factory=list)
    different_subjects: list[SubjectDifference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return not any(
            (
                self.missing_topics,
                self.extra_topics,
                self.different_topics,
                self.missing_acls,
                self.extra_acls,
                self.foreign_acls,
                self.leftover_principals,
                self.missing_subjects,
                self.different_subjects,
            )
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self) | {"in_sync": self.in_sync}, indent=2, sort_keys=True) + "\n"

    def to_table(self) -> str:
        lines = [f"drift of stack {self.stack} against {self.cluster}"]
        lines.append(
            f"TOPICS  missing {len(self.missing_topics)}  extra {len(self.extra_topics)}  "
            f"different {len({d.topic for d in self.different_topics})}"
        )
        lines += [f"  missing    {name}" for name in self.missing_topics]
        lines += [f"  extra      {name}  (not in topology.yaml; left alone)" for name in self.extra_topics]
        lines += [
            f"  different  {d.topic}  {d.setting}: plan {d.planned}, live {d.live}"
            for d in self.different_topics
        ]
        lines.append(
            f"ACLS    missing {len(self.missing_acls)}  extra {len(self.extra_acls)}  "
            f"foreign {len(self.foreign_acls)}"
        )
        lines += [f"  missing    {acl}" for acl in self.missing_acls]
        lines += [f"  extra      {acl}" for acl in self.extra_acls]
        lines += [f"  foreign    {acl}" for acl in self.foreign_acls]
        if self.leftover_principals:
            lines.append(
                f"PRINCIPALS  leftover {len(self.leftover_principals)}  (services the plan no longer has)"
            )
            lines += [f"  leftover   {what}" for what in self.leftover_principals]
        if self.missing_subjects or self.different_subjects:
            lines.append(
                f"SUBJECTS  missing {len(self.missing_subjects)}  "
                f"different {len({d.subject for d in self.different_subjects})}"
            )
            lines += [f"  missing    {name}" for name in self.missing_subjects]
            lines += [
                f"  different  {d.subject}  {d.setting}: plan {d.planned}, live {d.live}"
                for d in self.different_subjects
            ]
        lines += [f"note: {note}" for note in self.notes]
        lines.append("in sync" if self.in_sync else "drift found")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Scope:
    """``principal_ids``: service -> the principal its ACLs name on the cluster, where that is not
    the plan's (Confluent service-account ids); ``ignore_principals``: admin identities;
    ``all_topics``: every topic on the cluster is the stack's to account for, not only those
    under its domain (a cluster of its own)."""

    principal_ids: dict[str, str] = field(default_factory=dict)
    ignore_principals: set[str] = field(default_factory=set)
    all_topics: bool = False
    # Other (domain, stack) pairs this cluster holds for the stack: a local broker's domains
    # before a rename, whose topics, users and grants are leftovers too.
    former_owners: list[tuple[str, str]] = field(default_factory=list)


def compare(
    plan: Plan,
    live: LiveCluster,
    cluster: str,
    scope: Scope,
    subjects: Mapping[str, LiveSubject] | None = None,
) -> DriftReport:
    """``subjects``: what the stack's Schema Registry holds of the plan's subjects (None: not read)."""
    report = DriftReport(stack=plan.stack, cluster=cluster)
    if subjects is not None:
        compare_subjects(plan, subjects, report)
    _compare_topics(plan, live, scope, report)
    if plan.access_mode == "rbac":
        report.notes.append(
            "acls.mode rbac: role bindings live in Confluent Cloud's API and are not compared"
        )
    _compare_acls(plan, live, scope, report)
    _leftover_principals(plan, live, scope, report)
    return report


def compare_subjects(plan: Plan, live: Mapping[str, LiveSubject], report: DriftReport) -> None:
    """Each planned subject against its latest registered version (the same Avro schema, in
    whatever spelling the registry keeps it) and its own compatibility level."""
    for subject in plan.subjects:
        found = live.get(subject.subject)
        if found is None or found.schema is None:
            report.missing_subjects.append(subject.subject)
            continue
        if not _same_schema(subject.definition, found.schema):
            report.different_subjects.append(
                SubjectDifference(subject.subject, "schema", subject.schema_file, _one_line(found.schema))
            )
        if found.compatibility != subject.compatibility:
            shown = found.compatibility or "(registry default)"
            report.different_subjects.append(
                SubjectDifference(subject.subject, "compatibility", subject.compatibility, shown)
            )
    report.missing_subjects.sort()
    report.different_subjects.sort()


def _same_schema(planned: str, registered: str) -> bool:
    try:
        return bool(avro.schema.parse(planned) == avro.schema.parse(registered))
    except (avro.errors.AvroException, ValueError):
        return planned == registered


def _one_line(schema: str, limit: int = 120) -> str:
    text = " ".join(schema.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _leftover_principals(plan: Plan, live: LiveCluster, scope: Scope, report: DriftReport) -> None:
    """SCRAM users in this stack's principal namespace (and a former domain's) that no planned
    service (in any credential generation) owns, and their grants: a removed service's
    credential that still logs in."""
    if plan.cluster.provider == "confluent":  # service accounts, not SCRAM users
        return
    namespaces = tuple(
        f"{domain}.{stack}." for domain, stack in [(plan.domain, plan.stack), *scope.former_owners]
    )
    # Every planned service's user, in any credential generation (`<principal>[-g<N>]`).
    bases = "|".join(re.escape(principal.name) for principal in plan.principals) or "(?!)"
    planned = re.compile(rf"^(?:{bases})(?:-g\d+)?$")

    # A migration's mirror principal is the stack's too, while the migration lasts.
    mirror = plan.migration.target.principal if plan.migration is not None else None

    def leftover(name: str) -> bool:
        return (
            name.startswith(namespaces)
            and name not in (plan.cluster.admin_principal, mirror)
            and not planned.match(name)
        )

    users = sorted(name for name in live.users if leftover(name))
    report.leftover_principals = [f"user {name}" for name in users] + [
        f"grant {acl}" for acl in sorted(live.acls) if acl.principal.removeprefix("User:") in users
    ]
    # Reported here once, not again as foreign grants on the plan's topics.
    leftovers = set(report.leftover_principals)
    report.foreign_acls = [acl for acl in report.foreign_acls if f"grant {acl}" not in leftovers]


def _ours(plan: Plan, name: str, scope: Scope) -> bool:
    """Whether an unplanned live topic is this stack's to account for: those under its domain
    (a preview's under its own prefix), or with ``all_topics`` any but other previews'."""
    if not scope.all_topics:
        domains = [plan.domain, *(domain for domain, _ in scope.former_owners)]
        return name.startswith(tuple(f"{plan.name_prefix}{domain}." for domain in domains))
    if plan.name_prefix:
        return name.startswith(plan.name_prefix)
    return not _PREVIEW_TOPIC.match(name)


def _compare_topics(plan: Plan, live: LiveCluster, scope: Scope, report: DriftReport) -> None:
    planned = {topic.name: topic for topic in plan.topics}
    report.missing_topics = sorted(name for name in planned if name not in live.topics)
    unplanned = [name for name in live.topics if name not in planned]
    report.extra_topics = sorted(name for name in unplanned if _ours(plan, name, scope))
    if not scope.all_topics and len(unplanned) > len(report.extra_topics):
        others = len(unplanned) - len(report.extra_topics)
        report.notes.append(
            f"{others} topics outside '{plan.name_prefix}{plan.domain}.' not compared (--all-topics)"
        )
    for name, topic in sorted(planned.items()):
        if name in live.topics:
            report.different_topics += topic_differences(topic, live.topics[name])


def topic_differences(topic: PlannedTopic, live: LiveTopic) -> list[TopicDifference]:
    found = []
    if live.partitions != topic.partitions:
        found.append(TopicDifference(topic.name, "partitions", str(topic.partitions), str(live.partitions)))
    if live.replication_factor != topic.replication_factor:
        found.append(
            TopicDifference(
                topic.name, "replication_factor", str(topic.replication_factor), str(live.replication_factor)
            )
        )
    for key, value in sorted(topic.config.items()):
        actual = live.effective.get(key, "(unset)")
        if _normalized(key, actual) != _normalized(key, value):
            found.append(TopicDifference(topic.name, key, value, actual))
    return found


def _normalized(key: str, value: str) -> str:
    return ",".join(sorted(value.split(","))) if key == "cleanup.policy" else value


def _compare_acls(plan: Plan, live: LiveCluster, scope: Scope, report: DriftReport) -> None:
    principal_ids = scope.principal_ids

    def principal(acl: AclBinding) -> str:
        return f"User:{principal_ids.get(acl.service, acl.principal)}"

    planned = {
        LiveAcl(
            principal(acl),
            acl.resource_type,
            acl.resource_name,
            acl.pattern_type,
            acl.operation,
            "ALLOW",
            "*",
        )
        for acl in [*plan.acls, *(plan.migration.target.acls if plan.migration is not None else [])]
    }
    ours = {f"User:{principal_ids.get(s.name, s.principal)}" for s in plan.services}
    if plan.migration is not None:
        ours.add(f"User:{plan.migration.target.principal}")
    ignored = {f"User:{name}" for name in scope.ignore_principals}
    topic_names = [topic.name for topic in plan.topics]
    rotated_out = _previous_generation(plan)
    live_acls = set(live.acls)
    report.missing_acls = sorted(str(acl) for acl in planned - live_acls)
    still_granted: set[str] = set()
    for acl in sorted(live_acls - planned):
        if acl.principal in ours:
            report.extra_acls.append(str(acl))
        elif rotated_out.match(acl.principal):
            still_granted.add(acl.principal)
        elif acl.principal not in ignored and _reaches_a_planned_topic(acl, topic_names):
            report.foreign_acls.append(str(acl))
    report.notes += [
        f"{principal} is a previous credential generation, still granted: the first `pulumi up` "
        "after the rotation's overlap revokes it"
        for principal in sorted(still_granted)
    ]


def _previous_generation(plan: Plan) -> re.Pattern[str]:
    """Another credential generation of a service's SCRAM user (`<principal>[-g<N>]`): it lives
    beside the current one until a rotation's overlap ends, so it is not drift."""
    if not plan.credentials.scram_users or not plan.services:
        return re.compile(r"(?!)")
    bases = "|".join(re.escape(plan.principal_at(s.name, 1)) for s in plan.services)
    return re.compile(rf"^User:(?:{bases})(?:-g\d+)?$")


def _reaches_a_planned_topic(acl: LiveAcl, topic_names: list[str]) -> bool:
    if acl.resource_type != "TOPIC":
        return False
    if acl.pattern_type == "LITERAL":
        return acl.resource_name == "*" or acl.resource_name in topic_names
    return any(name.startswith(acl.resource_name) for name in topic_names)
