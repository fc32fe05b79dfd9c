"""Judge a schema change by the services it would break: every changed subject's new schema
against the versions still in use, with Apache Avro's own reader/writer compatibility, in the
direction(s) the subject's compatibility level demands.

- BACKWARD: the new schema reads what the versions in use wrote (consumers upgrade first);
- FORWARD: the versions in use read what the new schema writes (producers upgrade first);
- FULL: both; `_TRANSITIVE`: against every earlier version, not only the latest;
- NONE: not checked (the registry accepts anything), so a human looks.

A consumer breaks when it cannot read a record; a producer when the registry refuses the
version it would register. Both are named, with Avro's reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import avro.errors
import avro.schema
from avro.compatibility import (
    ReaderWriterCompatibilityChecker,
    SchemaCompatibilityResult,
    SchemaCompatibilityType,
    SchemaIncompatibilityType,
)

from infra.plan.change_review import Finding
from infra.plan.model import Plan, SubjectPlan
from infra.plan.schema_subjects import subject_name

# Which way each level reads: "new-reads-old" (BACKWARD), "old-reads-new" (FORWARD).
DIRECTIONS: dict[str, tuple[str, ...]] = {
    "BACKWARD": ("new-reads-old",),
    "FORWARD": ("old-reads-new",),
    "FULL": ("new-reads-old", "old-reads-new"),
}


@dataclass(frozen=True)
class Incompatibility:
    direction: str  # new-reads-old | old-reads-new
    version: str  # which version in use, e.g. "origin/main"
    reasons: tuple[str, ...]


def incompatibilities(level: str, new: str, in_use: Sequence[tuple[str, str]]) -> list[Incompatibility]:
    """What breaks between the ``new`` schema and the versions ``in_use`` ((label, schema)
    pairs, latest first) at ``level``; empty when compatible. NONE checks nothing."""
    if level == "NONE":
        return []
    base_level = level.removesuffix("_TRANSITIVE")
    versions = in_use if level.endswith("_TRANSITIVE") else in_use[:1]
    found = []
    new_schema = avro.schema.parse(new)
    for label, text in versions:
        try:
            old_schema = avro.schema.parse(text)
        except (avro.errors.AvroException, ValueError):
            continue  # `validate` refused it, so no registry ever held it
        for direction in DIRECTIONS[base_level]:
            reader, writer = (
                (new_schema, old_schema) if direction == "new-reads-old" else (old_schema, new_schema)
            )
            checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
            result = checker.get_compatibility(reader, writer)
            if result.compatibility is SchemaCompatibilityType.incompatible:
                found.append(Incompatibility(direction, label, _reasons(result, direction)))
    return found


def _reasons(result: SchemaCompatibilityResult, direction: str) -> tuple[str, ...]:
    """Avro's findings in a reviewer's words (its messages and locations are sets: sorted)."""
    messages = ", ".join(sorted(str(m) for m in result.messages))
    locations = ", ".join(sorted(str(loc) for loc in result.locations))
    kinds = set(result.incompatibilities)
    if kinds == {SchemaIncompatibilityType.reader_field_missing_default_value}:
        verb = "added" if direction == "new-reads-old" else "removed"
        return (f"field {messages} {verb} without a default",)
    if kinds == {SchemaIncompatibilityType.missing_enum_symbols}:
        symbols = re.findall(r"'([^']+)'", messages) or [messages]  # Avro reports a set's repr
        return (f"enum symbol(s) {', '.join(symbols)} unknown to the reader",)
    # Avro merges the messages and locations of all its findings into two sets, unpaired with
    # their kinds: findings of several kinds can only be said together.
    said = ", ".join(sorted(kind.value.replace("_", " ") for kind in kinds))
    return (f"{said} at {locations}: {messages}",)


def review_subjects(
    base: Plan | None,
    head: Plan,
    base_label: str = "base",
    history: Mapping[str, Sequence[tuple[str, str]]] | None = None,
) -> list[Finding]:
    """Findings for every subject of ``head``, and for every subject of ``base`` it no longer
    has. ``base_label`` names the base's version (a git ref); ``history``: per subject, the
    versions before it, latest first (transitive levels)."""
    old = {s.subject: s for s in base.subjects} if base is not None else {}
    findings = _removed(old, head)
    for subject in head.subjects:
        before = old.get(subject.subject)
        if before is None:
            findings.append(
                Finding(
                    head.stack,
                    "schema-added",
                    subject.subject,
                    f"{subject.schema_file}: compatible by definition",
                )
            )
            continue
        if before.compatibility != subject.compatibility:
            findings.append(
                Finding(
                    head.stack,
                    "schema-compatibility-changed",
                    subject.subject,
                    f"{before.compatibility} -> {subject.compatibility}",
                    tuple(subject.consumers),
                )
            )
        if before.definition == subject.definition:
            continue
        findings.append(
            _changed(
                head.stack,
                subject,
                [(base_label, before.definition), *(history or {}).get(subject.subject, [])],
            )
        )
    return findings


def _removed(old: Mapping[str, SubjectPlan], head: Plan) -> list[Finding]:
    """A subject of the base the head does not have: the provider soft-deletes it (its versions
    stay readable by id). Removed, it is judged like a removed topic (change_review): refused
    while a consumer that remains still reads its topic. Renamed (the same event under another
    name, as a subject_name_strategy change does to every subject), records keep their schema
    ids, so readers go on; what is lost is the guard: the new name's first version is compatible
    by definition."""
    new_names = {s.subject for s in head.subjects}
    by_event = {(s.topic, s.record_name): s for s in head.subjects}
    readers = {service.name: set(service.consumes) for service in head.services}
    found = []
    for name in sorted(old.keys() - new_names):
        subject = old[name]
        services = tuple(sorted({*subject.producers, *subject.consumers}))
        renamed = by_event.get((subject.topic, subject.record_name))
        if renamed is not None:
            detail = f"renamed to {renamed.subject}, which starts without the versions of {name}"
            before, after = _strategy(subject), _strategy(renamed)
            if before != after:
                detail += f" (subject_name_strategy {before} -> {after} renames every subject)"
            found.append(Finding(head.stack, "schema-renamed", name, detail, services))
            continue
        remaining = [c for c in subject.consumers if subject.topic in readers.get(c, set())]
        detail = "removed from the topology"
        if remaining:
            detail += (
                f"; {', '.join(remaining)} still read{'s' if len(remaining) == 1 else ''} {subject.topic}"
            )
        rule = "schema-removed-in-use" if remaining else "schema-removed"
        found.append(Finding(head.stack, rule, name, detail, services))
    return found


def _strategy(subject: SubjectPlan) -> str:
    """The subject_name_strategy that names ``subject`` (the plan keeps the names, not the setting)."""
    for strategy in ("topic", "topic_record", "record"):
        if subject_name(strategy, subject.topic, subject.record_name) == subject.subject:
            return strategy
    return "unknown"


def _changed(stack: str, subject: SubjectPlan, in_use: list[tuple[str, str]]) -> Finding:
    if subject.compatibility == "NONE":
        return Finding(
            stack, "schema-unchecked", subject.subject, subject.schema_file, tuple(subject.consumers)
        )
    broken = incompatibilities(subject.compatibility, subject.definition, in_use)
    if not broken:
        return Finding(
            stack, "schema-compatible", subject.subject, f"{subject.schema_file}: {subject.compatibility}"
        )
    parts = []
    for found in broken:
        reasons = "; ".join(found.reasons)
        if found.direction == "old-reads-new":
            readers = ", ".join(subject.consumers) or "no consumer yet"
            parts.append(
                f"{readers} (reading with the {found.version} version) cannot read the new records: {reasons}"
            )
        else:
            readers = ", ".join(subject.consumers) or "no consumer yet"
            parts.append(
                f"{readers} (upgrading to the new version) cannot read the records the "
                f"{found.version} version wrote: {reasons}"
            )
    writers = ", ".join(subject.producers) or "no producer yet"
    parts.append(
        f"the registry refuses the new version at {subject.compatibility}, so {writers} cannot register it"
    )
    return Finding(
        stack,
        "schema-incompatible",
        subject.subject,
        " | ".join(parts),
        tuple(sorted({*subject.consumers, *subject.producers})),
    )
