"""Judge a change by the services that depend on it: the plan at a base ref against the plan of
the work tree, each difference with its consequence and a severity from one table (`RULES`).

Pure: `commands/diff.py` reads the base files with `git show` and resolves both plans.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import IntEnum

from infra.model.durations import format_retention
from infra.plan.model import Plan, PlannedTopic


class Severity(IntEnum):
    SAFE = 0
    WARNING = 1  # needs a human: exit 4
    ERROR = 2  # refused: exit 2


# The severity of every kind of change, and why (the README repeats this table).
RULES: dict[str, tuple[Severity, str]] = {
    "topic-added": (Severity.SAFE, "a new topic"),
    "topic-removed": (Severity.WARNING, "its data is deleted with it"),
    "topic-removed-in-use": (
        Severity.ERROR,
        "deployed services still use it: stop using it first, remove it after",
    ),
    "partitions-increased": (Severity.SAFE, "no key: nothing relies on which partition a record lands in"),
    "partitions-increased-keyed": (Severity.WARNING, "keys move to other partitions: per-key order breaks"),
    "partitions-decreased": (Severity.ERROR, "Kafka cannot remove partitions"),
    "retention-shortened": (Severity.WARNING, "records older than the new retention are deleted"),
    "retention-lengthened": (Severity.SAFE, "records are kept longer"),
    "cleanup-changed": (Severity.WARNING, "compaction and deletion keep different records"),
    "min-isr-above-replication": (Severity.ERROR, "no write with acks=all can ever succeed"),
    "min-isr-changed": (Severity.WARNING, "producers with acks=all fail sooner, or durability drops"),
    "replication-changed": (Severity.WARNING, "replicas are reassigned: traffic and, lowered, durability"),
    "config-changed": (Severity.SAFE, "a topic config changes"),
    "group-renamed": (Severity.WARNING, "offsets start over per auto.offset.reset"),
    "transactional-prefix-renamed": (Severity.WARNING, "running producers' transactions are fenced"),
    "acl-added": (Severity.SAFE, "a new grant"),
    "acl-removed": (Severity.WARNING, "the service's running code loses it before new code ships"),
    "env-changed": (Severity.SAFE, "a service's env flag changes (its pods roll where mapped)"),
    "backend-changed": (Severity.WARNING, "services switch how they publish"),
    "principal-added": (Severity.SAFE, "a credential is created"),
    "principal-removed": (Severity.WARNING, "its credential is revoked"),
    "credentials-rotated": (
        Severity.WARNING,
        "the old credentials are revoked after the overlap: pods not restarted by then lose access",
    ),
    "alert-threshold-changed": (Severity.SAFE, "the consumer's lag alert fires at another threshold"),
    "alert-removed": (
        Severity.WARNING,
        "the consumer still reads the topic, but no alert watches its lag",
    ),
    # Event schemas (infra/plan/schema_review.py).
    "schema-added": (Severity.SAFE, "a new subject: compatible by definition"),
    "schema-compatible": (Severity.SAFE, "every version in use stays readable as its level demands"),
    "schema-incompatible": (Severity.ERROR, "readers fail, and the registry refuses the new version"),
    "schema-unchecked": (
        Severity.WARNING,
        "compatibility NONE: the registry takes anything, readers may fail",
    ),
    "schema-compatibility-changed": (Severity.WARNING, "what later versions of the schema must keep changes"),
    "schema-removed": (
        Severity.SAFE,
        "no consumer that remains reads it: the registry soft-deletes it (its versions stay readable by id)",
    ),
    "schema-renamed": (
        Severity.WARNING,
        "records keep their schema ids, but the new subject's first version is checked against nothing",
    ),
    "schema-removed-in-use": (
        Severity.ERROR,
        "a consumer that remains still reads it: stop reading it first, remove it after",
    ),
    # Cluster migrations (settings.migration, docs/migration.md).
    "migration-started": (
        Severity.SAFE,
        "MirrorMaker 2 copies the topics into the target; services stay where the settings say",
    ),
    "service-moved": (
        Severity.WARNING,
        "its pods switch clusters; a consumer resumes from translated offsets: no loss, "
        "some records read again (consumers must be idempotent)",
    ),
    "service-moved-back": (
        Severity.WARNING,
        "a rollback: it reads and writes the source again, resuming from its offsets there",
    ),
    "migration-finished": (
        Severity.WARNING,
        "replication stops; the mirror principals and their grants go from both clusters",
    ),
    "migration-removed-early": (
        Severity.ERROR,
        "services still on the source would switch at once, and records not yet mirrored stay behind",
    ),
}
BACKEND_FLAGS = ("MESSAGING_BACKEND", "MESSAGING_DUAL_WRITE")
# What changes in a service's env when it moves between clusters (one service-moved finding).
CONNECTION_FLAGS = ("KAFKA_BROKER_URL", "KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM")


@dataclass(frozen=True, order=True)
class Finding:
    stack: str
    rule: str
    subject: str  # a topic, service or grant
    detail: str
    services: tuple[str, ...] = ()  # who is affected

    @property
    def severity(self) -> Severity:
        return RULES[self.rule][0]

    @property
    def consequence(self) -> str:
        return RULES[self.rule][1]


@dataclass
class Review:
    findings: list[Finding] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # a side that does not resolve

    @property
    def severity(self) -> Severity:
        worst = max((finding.severity for finding in self.findings), default=Severity.SAFE)
        return Severity.ERROR if self.problems else worst

    def to_json(self) -> str:
        document = {
            "severity": self.severity.name.lower(),
            "problems": self.problems,
            "findings": [
                asdict(f) | {"severity": f.severity.name.lower(), "consequence": f.consequence}
                for f in sorted(self.findings)
            ],
        }
        return json.dumps(document, indent=2, sort_keys=True) + "\n"

    def to_markdown(self, base: str) -> str:
        icon = {Severity.SAFE: "✅", Severity.WARNING: "⚠️", Severity.ERROR: "⛔"}
        lines = [
            f"### Change review against `{base}`: {icon[self.severity]} {self.severity.name.lower()}",
            "",
        ]
        lines += [f"- ⛔ {problem}" for problem in self.problems]
        if not self.findings and not self.problems:
            lines.append("No change to topics, grants, principals or env.")
        if self.findings:
            lines += [
                "| | stack | change | subject | detail | consequence | services |",
                "|---|---|---|---|---|---|---|",
            ]
            for f in sorted(self.findings, key=lambda f: (-f.severity, f)):
                cells = [icon[f.severity], f.stack, f.rule, f"`{f.subject}`", f.detail, f.consequence]
                lines.append("| " + " | ".join([*cells, ", ".join(f.services) or "-"]) + " |")
        return "\n".join(lines) + "\n"


def review(base: Plan | None, head: Plan) -> list[Finding]:
    """Every difference between the two plans of one stack (``base`` None: a new stack)."""
    if base is None:
        return [Finding(head.stack, "topic-added", t.name, "new stack") for t in head.topics]
    findings: list[Finding] = []
    findings += _topics(base, head)
    findings += _services(base, head)
    findings += _watches(base, head)
    findings += _migration(base, head)
    return findings


def _migration(base: Plan, head: Plan) -> list[Finding]:
    """The migration begun or ended; each service's move is a finding of `_services`."""
    stack = head.stack
    if base.migration is None and head.migration is not None:
        on_source = tuple(head.migration.services_on("source"))
        detail = f"from {head.migration.source.bootstrap}; {len(head.migration.topics)} topics mirrored"
        return [Finding(stack, "migration-started", "settings.migration", detail, on_source)]
    if base.migration is not None and head.migration is None:
        left = tuple(base.migration.services_on("source"))
        if left:
            detail = f"{', '.join(left)} still on the source: move them first, remove the migration after"
            return [Finding(stack, "migration-removed-early", "settings.migration", detail, left)]
        return [Finding(stack, "migration-finished", "settings.migration", "every service on the target")]
    return []


def _watches(base: Plan, head: Plan) -> list[Finding]:
    """Lag alert thresholds per consumer; a consumer that is no longer watched while it still reads."""
    old = {(w.service, w.topic): w for w in base.consumers}
    new = {(w.service, w.topic): w for w in head.consumers}
    still_reading = {(s.name, topic) for s in head.services for topic in s.consumes}
    findings = []
    for key, before in sorted(old.items()):
        service, topic = key
        after = new.get(key)
        if after is None:
            if key in still_reading:
                findings.append(
                    Finding(head.stack, "alert-removed", topic, "monitoring disabled", (service,))
                )
            continue
        changes = [
            f"{name} {_threshold(a)} -> {_threshold(b)}"
            for name, a, b in (
                ("messages", before.lag_messages, after.lag_messages),
                ("age", before.lag_seconds, after.lag_seconds),
                ("for", before.for_seconds, after.for_seconds),
            )
            if a != b
        ]
        if changes:
            findings.append(
                Finding(head.stack, "alert-threshold-changed", topic, ", ".join(changes), (service,))
            )
    return findings


def _threshold(value: int | None) -> str:
    return "-" if value is None else str(value)


def _users(plan: Plan, topic: str) -> tuple[str, ...]:
    return tuple(sorted(s.name for s in plan.services if topic in s.produces or topic in s.consumes))


def _consumers(plan: Plan, topic: str) -> tuple[str, ...]:
    return tuple(sorted(s.name for s in plan.services if topic in s.consumes))


def _topics(base: Plan, head: Plan) -> list[Finding]:
    old = {t.name: t for t in base.topics}
    new = {t.name: t for t in head.topics}
    stack = head.stack
    found = [
        Finding(stack, "topic-added", name, f"{new[name].partitions} partitions")
        for name in sorted(new.keys() - old.keys())
    ]
    remaining = {service.name for service in head.services}
    for name in sorted(old.keys() - new.keys()):
        # Every service that used it in the base: its running code uses it until its new version
        # ships, or until it is stopped. A service removed in the same change is no exception:
        # its pods run until their Deployment goes, a consumer may not have read the topic to the
        # end, a producer's writes start failing. So a topic is retired in two changes (stop
        # using it, or remove the service, and ship; then remove the topic).
        users = _users(base, name)
        gone = [service for service in users if service not in remaining]
        detail = "removed from the topology"
        if gone:
            detail += f"; {', '.join(gone)} removed in the same change"
        found.append(
            Finding(stack, "topic-removed-in-use" if users else "topic-removed", name, detail, users)
        )
    for name in sorted(old.keys() & new.keys()):
        found += _topic_changes(stack, old[name], new[name], head)
    return found


def _topic_changes(stack: str, old: PlannedTopic, new: PlannedTopic, head: Plan) -> list[Finding]:
    found: list[Finding] = []
    name = new.name
    if new.partitions != old.partitions:
        detail = f"{old.partitions} -> {new.partitions}"
        if new.partitions < old.partitions:
            found.append(Finding(stack, "partitions-decreased", name, detail, _users(head, name)))
        elif new.message_key or old.message_key:
            found.append(
                Finding(
                    stack,
                    "partitions-increased-keyed",
                    name,
                    f"{detail}, key {new.message_key or old.message_key}",
                    _consumers(head, name),
                )
            )
        else:
            found.append(Finding(stack, "partitions-increased", name, detail))
    if new.replication_factor != old.replication_factor:
        found.append(
            Finding(
                stack,
                "replication-changed",
                name,
                f"{old.replication_factor} -> {new.replication_factor}",
                _users(head, name),
            )
        )
    for key in sorted(old.config.keys() | new.config.keys()):
        before, after = old.config.get(key), new.config.get(key)
        if before == after:
            continue
        found.append(_config_change(stack, new, key, (before, after), head))
    return found


def _config_change(
    stack: str, new: PlannedTopic, key: str, values: tuple[str | None, str | None], head: Plan
) -> Finding:
    name, (before, after) = new.name, values
    detail = (
        f"{key}: {before if before is not None else '(unset)'} -> {after if after is not None else '(unset)'}"
    )
    users = _users(head, name)
    if key == "retention.ms" and before is not None and after is not None:
        shorter = _retention(after) < _retention(before)
        return Finding(
            stack,
            "retention-shortened" if shorter else "retention-lengthened",
            name,
            detail,
            users if shorter else (),
        )
    if key == "cleanup.policy":
        return Finding(stack, "cleanup-changed", name, detail, users)
    if key == "min.insync.replicas":
        above = after is not None and int(after) > new.replication_factor
        rule = "min-isr-above-replication" if above else "min-isr-changed"
        return Finding(stack, rule, name, f"{detail} (replication {new.replication_factor})", users)
    return Finding(stack, "config-changed", name, detail)


def _retention(value: str) -> float:
    """-1 (infinite) sorts after every finite retention."""
    return float("inf") if int(value) < 0 else float(value)


def _env_change(was: str | None, now: str | None) -> str:
    if was is None:
        return f"added: {now}"
    if now is None:
        return f"removed (was {was})"
    return f"{was} -> {now}"


def _services(base: Plan, head: Plan) -> list[Finding]:
    stack = head.stack
    found: list[Finding] = []
    old = {s.name: s for s in base.services}
    new = {s.name: s for s in head.services}
    for name in sorted(new.keys() - old.keys()):
        found.append(Finding(stack, "principal-added", new[name].principal, "a new service", (name,)))
    for name in sorted(old.keys() - new.keys()):
        found.append(Finding(stack, "principal-removed", old[name].principal, "service removed", (name,)))
    rotated = base.credentials.generation != head.credentials.generation
    if rotated:
        generations = f"generation {base.credentials.generation} -> {head.credentials.generation}"
        overlap = f"old ones valid for {format_retention(head.credentials.overlap_ms)} more"
        found.append(Finding(stack, "credentials-rotated", generations, overlap, tuple(sorted(new))))
    for name in sorted(old.keys() & new.keys()):
        before, after = old[name], new[name]
        # Compared at generation 1: a rotation is one finding of its own (above), not a
        # principal removed and added per service.
        if base.principal_at(name, 1) != head.principal_at(name, 1):
            found.append(
                Finding(stack, "principal-removed", before.principal, f"now {after.principal}", (name,))
            )
            found.append(
                Finding(stack, "principal-added", after.principal, f"was {before.principal}", (name,))
            )
        for attribute, rule in (
            ("consumer_group", "group-renamed"),
            ("consumer_group_prefix", "group-renamed"),
            ("transactional_id_prefix", "transactional-prefix-renamed"),
        ):
            was, now = getattr(before, attribute), getattr(after, attribute)
            if was is not None and now is not None and was != now:
                found.append(Finding(stack, rule, name, f"{was} -> {now}", (name,)))
        moved = before.cluster != after.cluster
        if moved:
            rule = "service-moved" if after.cluster == "target" else "service-moved-back"
            changed = [
                {"KAFKA_BROKER_URL": "bootstrap", "KAFKA_SECURITY_PROTOCOL": "security protocol"}.get(
                    key, "SASL mechanism"
                )
                for key in CONNECTION_FLAGS
                if before.env.get(key) != after.env.get(key)
            ]
            detail = f"{name}: {before.cluster} → {after.cluster}: {', '.join([*changed, 'credentials'])}"
            found.append(Finding(stack, rule, name, detail, (name,)))
        for key in sorted(before.env.keys() | after.env.keys()):
            was, now = before.env.get(key), after.env.get(key)
            if moved and key in CONNECTION_FLAGS:
                continue
            if was != now:
                rule = "backend-changed" if key in BACKEND_FLAGS else "env-changed"
                found.append(Finding(stack, rule, f"{name} {key}", _env_change(was, now), (name,)))
    old_acls = {(a.service, a.adoption_id) for a in base.acls if a.service in new}
    new_acls = {(a.service, a.adoption_id) for a in head.acls}
    found += [
        Finding(stack, "acl-added", grant, "", (service,)) for service, grant in sorted(new_acls - old_acls)
    ]
    found += [
        Finding(stack, "acl-removed", grant, "", (service,)) for service, grant in sorted(old_acls - new_acls)
    ]
    return found
