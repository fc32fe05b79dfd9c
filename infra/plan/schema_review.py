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
    """Findings for every subject of ``head``. ``base_label`` names the base's version (a git
    ref); ``history``: per subject, the versions before it, latest first (transitive levels)."""
    old = {s.subject: s for s in base.subjects} if base is not None else {}
    findings = []
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
