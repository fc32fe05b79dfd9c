"""`lag`: each watched consumer judged against its thresholds; pure, from what `consumer_lag`
read. A consumer is in trouble when it is more messages behind than its threshold, when its
oldest unconsumed record is older than its threshold, or when no member of its group is
consuming."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from infra.live.consumer_lag import MISSING, WatchLag
from infra.model.durations import format_retention


@dataclass(frozen=True)
class LagFinding:
    service: str
    group: str
    topic: str
    messages: int
    seconds: int | None  # the age of the oldest unconsumed record; None: nothing unconsumed
    partitions: dict[str, int]  # partition -> messages behind (the worst group's)
    members: int
    messages_threshold: int | None
    seconds_threshold: int | None
    problems: list[str]


def judge(results: list[WatchLag], now_ms: int) -> list[LagFinding]:
    findings = []
    for result in results:
        watch = result.watch
        groups = result.groups
        worst = max(groups, key=lambda g: g.messages, default=None)
        messages = worst.messages if worst else 0
        stamps = [g.oldest_unconsumed_ms for g in groups if g.oldest_unconsumed_ms is not None]
        seconds = max((now_ms - min(stamps)) // 1000, 0) if stamps else None
        members = sum(g.members for g in groups)
        problems = []
        if not groups or all(g.state == MISSING for g in groups):
            problems.append("no active consumer: the group does not exist")
        elif members == 0:
            problems.append("no active consumer: the group has no member")
        if watch.lag_messages is not None and messages > watch.lag_messages:
            problems.append(f"{messages} messages behind > {watch.lag_messages}")
        if watch.lag_seconds is not None and seconds is not None and seconds > watch.lag_seconds:
            problems.append(f"oldest unconsumed {_age(seconds)} > {_age(watch.lag_seconds)}")
        findings.append(
            LagFinding(
                service=watch.service,
                group=watch.group + ("*" if watch.group_is_prefix else ""),
                topic=watch.topic,
                messages=messages,
                seconds=seconds,
                partitions={str(p.partition): p.lag for p in worst.partitions} if worst else {},
                members=members,
                messages_threshold=watch.lag_messages,
                seconds_threshold=watch.lag_seconds,
                problems=problems,
            )
        )
    return findings


def _age(seconds: int) -> str:
    return format_retention(seconds * 1000) if seconds % 60 == 0 or seconds < 60 else f"{seconds}s"


def to_json(findings: list[LagFinding]) -> str:
    document = {
        "within_thresholds": not any(f.problems for f in findings),
        "consumers": [asdict(f) for f in findings],
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def to_table(findings: list[LagFinding], stack: str, cluster: str) -> str:
    header = ("SERVICE", "GROUP", "TOPIC", "BEHIND", "OLDEST", "MEMBERS", "STATUS")
    rows = [
        (
            f.service,
            f.group,
            f.topic,
            f"{f.messages} (max {f.messages_threshold if f.messages_threshold is not None else '-'})",
            f"{_age(f.seconds) if f.seconds is not None else '-'} "
            f"(max {_age(f.seconds_threshold) if f.seconds_threshold is not None else '-'})",
            str(f.members),
            "; ".join(f.problems) or "ok",
        )
        for f in findings
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [f"lag of stack {stack} against {cluster}"]
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    troubled = sum(1 for f in findings if f.problems)
    lines.append(
        f"{troubled} of {len(findings)} consumers need attention"
        if troubled
        else "all consumers within thresholds"
    )
    return "\n".join(lines) + "\n"
