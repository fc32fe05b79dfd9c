"""Where a cluster migration stands, read from both live clusters: the mirror's lag per topic, each
consumer group's position on the source and its translated position on the target, which cluster
each service uses, which services may move next, and whether the source can go.

The mirror's lag is the source's end offsets against what MirrorMaker's source connector has
committed as mirrored in the Connect offsets topic on the target (its key names the source
partition, its value the offset of the last record it copied). Those commits trail the copying by
at most the worker's offset flush interval, so the lag shown is never less than the real one.
While services still write to the source the count is rarely 0: the mirror counts as in sync
when its oldest record not yet copied is younger than the scope's tolerance (a few sync
intervals); a producer moves only once its topics are drained (lag 0), so no key's events from
the source arrive on the target after its events written there.

The mirror's idleness is measured from the same offsets topic: the timestamp of the source
connector's newest commit there. Connect writes a source task's offsets only when it copied
something since the last flush (OffsetStorageWriter.beginFlush has nothing to write otherwise),
and the topic is compacted, so the newest commit per partition outlives the source topics'
retention: the last copy's time stays known when the source's own records are gone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from infra.live.cluster_admin import (
    ClusterUnreachable,
    active_groups,
    committed_offsets,
    connect,
    end_offsets,
    first_committed_record_times,
)
from infra.live.kafka_broker import Broker
from infra.live.live_cluster import admin_login
from infra.live.mirror_maker import read_topic

SOURCE_CONNECTOR = "MirrorSourceConnector"
# A per-instance group's name holds its pod's: a pod on the target joins a group of its own that
# has no translated offset, and starts where the consumer's auto.offset.reset says.
PER_INSTANCE_START = "new groups start at auto.offset.reset (earliest: re-read, never lost)"


@dataclass(frozen=True)
class MovingService:
    """A service as the migration sees it: its side and what it reads and writes."""

    name: str
    side: str  # "source" | "target"
    produces: tuple[str, ...]
    consumes: tuple[str, ...]
    group: str | None  # its consumer group (a prefix's groups are matched by prefix)
    group_is_prefix: bool = False


@dataclass(frozen=True)
class MirrorScope:
    """What the status reads: the mirrored topics, the services, and where MirrorMaker keeps its
    source connector's progress on the target."""

    topics: tuple[str, ...]
    services: tuple[MovingService, ...]
    offsets_topic: str
    source_alias: str
    keep_seconds: int
    tolerated_lag_seconds: int  # the mirror is in sync while nothing waits longer to be copied


@dataclass(frozen=True)
class TopicMirror:
    topic: str
    source_end: int  # records ever written on the source (sum of end offsets)
    lag: int  # records on the source the mirror has not committed as copied
    partitions_never_mirrored: int  # partitions holding records of which nothing was copied yet
    lag_seconds: int | None  # the age of the oldest record not copied yet; None: none, or unknown
    lagging: bool  # records wait longer than the tolerance (or their age cannot be read)


@dataclass(frozen=True)
class GroupPosition:
    """One group on one topic: how far it is from the end on each cluster."""

    group: str
    service: str
    topic: str
    source_behind: int | None  # None: no committed offset on the source
    target_behind: int | None  # None: no translated (committed) offset on the target
    active_on_source: bool
    active_on_target: bool

    @property
    def translated(self) -> bool:
        return self.target_behind is not None

    @property
    def rereads(self) -> int | None:
        """How many records the group would read again if it moved now: the translated position is
        at or behind the real one (MirrorMaker translates to the last offset sync)."""
        if self.source_behind is None or self.target_behind is None:
            return None
        return max(self.target_behind - self.source_behind, 0)


@dataclass(frozen=True)
class MigrationStatus:
    topics: tuple[TopicMirror, ...]
    groups: tuple[GroupPosition, ...]
    sides: dict[str, str]  # service -> "source" | "target"
    safe_moves: tuple[str, ...]  # "<service>: <why it may move now>"
    blocked_moves: tuple[str, ...]  # "<service>: <why not yet>"
    idle_seconds: int | None  # since the mirror last committed a copy; None: it never did
    keep_seconds: int
    # service -> its per-instance group prefix: such groups are never called translated.
    per_instance_groups: dict[str, str] = field(default_factory=dict)

    @property
    def movable(self) -> tuple[str, ...]:
        """The services on the source that may move to the target now."""
        return tuple(step.split(":", 1)[0] for step in self.safe_moves)

    @property
    def lag(self) -> int:
        return sum(topic.lag for topic in self.topics)

    @property
    def in_sync(self) -> bool:
        return not any(topic.lagging for topic in self.topics)

    @property
    def drained(self) -> bool:
        """Everything on the source was copied."""
        return self.lag == 0

    @property
    def all_on_target(self) -> bool:
        return all(side == "target" for side in self.sides.values())

    @property
    def source_can_go(self) -> bool:
        return (
            self.all_on_target
            and self.drained
            and self.idle_seconds is not None
            and self.idle_seconds >= self.keep_seconds
        )

    @property
    def healthy(self) -> bool:
        """In sync, and every group of a consumer still on the source translated on the target."""
        return self.in_sync and all(
            position.translated
            for position in self.groups
            if self.sides.get(position.service) == "source" and position.source_behind is not None
        )


def read_status(source: Broker, target: Broker, scope: MirrorScope, timeout: float = 20) -> MigrationStatus:
    """Read both clusters (ClusterUnreachable names the one that did not answer)."""
    source_admin, _ = connect(admin_login(source), within=timeout)
    target_admin, _ = connect(admin_login(target), within=timeout)
    groups = _groups(scope.services)
    source_ends, source_committed, source_active = _positions(
        source_admin, "source", source, scope.topics, groups
    )
    target_ends, target_committed, target_active = _positions(
        target_admin, "target", target, scope.topics, groups
    )
    progress = read_mirror_progress(target, scope.offsets_topic, scope.source_alias, timeout)
    mirrored = progress.offsets
    waiting = {key: mirrored.get(key, 0) for key, end in source_ends.items() if end > mirrored.get(key, 0)}
    now_ms = int(time.time() * 1000)
    return judge(
        scope,
        source_ends=source_ends,
        target_ends=target_ends,
        mirrored=mirrored,
        source_committed=source_committed,
        target_committed=target_committed,
        active={"source": source_active, "target": target_active},
        first_unmirrored_ms=first_unmirrored_times(source, waiting, timeout),
        now_ms=now_ms,
        last_copy_ms=progress.last_commit_ms,
    )


def first_unmirrored_times(
    source: Broker, positions: Mapping[tuple[str, int], int], timeout: float = 20
) -> dict[tuple[str, int], int | None]:
    """For each partition the mirror is behind on by offsets: the time of the first committed
    record it has yet to copy, or None when there is none (a transaction's commit marker, or
    aborted records, after the last copied record)."""
    try:
        return first_committed_record_times(
            source.reader("migration-status", committed_to_end=True), positions, timeout
        )
    except KafkaException as error:
        raise ClusterUnreachable(
            f"cannot read the source at {source.bootstrap}: {error.args[0].str()}"
        ) from None


def _positions(
    admin: AdminClient, side: str, broker: Broker, topics: Iterable[str], groups: list[str]
) -> tuple[dict[tuple[str, int], int], dict[tuple[str, str, int], int], set[str]]:
    """One cluster's end offsets of the topics, the groups' committed offsets and which groups
    have members."""
    try:
        return end_offsets(admin, topics), committed_offsets(admin, groups), active_groups(admin, groups)
    except KafkaException as error:
        raise ClusterUnreachable(
            f"cannot read the {side} at {broker.bootstrap}: {error.args[0].str()}"
        ) from None


def _groups(services: Iterable[MovingService]) -> list[str]:
    return sorted({service.group for service in services if service.group and not service.group_is_prefix})


@dataclass(frozen=True)
class MirrorProgress:
    """What MirrorMaker's source connector committed for this source in the Connect offsets topic."""

    offsets: dict[tuple[str, int], int]  # (topic, partition) -> the next source offset to copy
    last_commit_ms: int | None  # when it last committed a copy; None: never


def read_mirror_progress(
    target: Broker, offsets_topic: str, source_alias: str, timeout: float = 20
) -> MirrorProgress:
    """The next source offset after the last record MirrorMaker's source connector committed as
    copied, per partition (the latest record per key in the Connect offsets topic), and the time
    of its newest commit."""
    try:
        records = read_topic(target, offsets_topic, timeout=timeout)
    except (KafkaException, TimeoutError) as error:
        reason = error.args[0].str() if isinstance(error, KafkaException) else str(error)
        raise ClusterUnreachable(
            f"cannot read MirrorMaker's offsets topic {offsets_topic} on {target.bootstrap}: {reason}"
        ) from None
    found: dict[tuple[str, int], int] = {}
    last_commit_ms: int | None = None
    for message in records:
        key = _source_partition(message.key(), source_alias)
        if key is None:
            continue
        value = message.value()
        if value is None:
            found.pop(key, None)
        else:
            found[key] = int(json.loads(value)["offset"]) + 1
            stamp = message.timestamp()[1]
            last_commit_ms = stamp if last_commit_ms is None else max(last_commit_ms, stamp)
    return MirrorProgress(found, last_commit_ms)


def _source_partition(raw_key: bytes | None, source_alias: str) -> tuple[str, int] | None:
    """A Connect offsets key ``["MirrorSourceConnector", {"cluster": .., "topic": .., "partition": ..}]``
    of this source as (topic, partition); None for any other connector's key."""
    try:
        connector, partition = json.loads(raw_key or b"null")
    except (TypeError, ValueError):
        return None
    if connector != SOURCE_CONNECTOR or not isinstance(partition, dict):
        return None
    if partition.get("cluster") != source_alias:
        return None
    return str(partition["topic"]), int(partition["partition"])


def judge(
    scope: MirrorScope,
    *,
    source_ends: Mapping[tuple[str, int], int],
    target_ends: Mapping[tuple[str, int], int],
    mirrored: Mapping[tuple[str, int], int],
    source_committed: Mapping[tuple[str, str, int], int],
    target_committed: Mapping[tuple[str, str, int], int],
    active: Mapping[str, set[str]],
    # Per partition behind by offsets: the first committed record not copied; None: there is none.
    first_unmirrored_ms: Mapping[tuple[str, int], int | None],
    now_ms: int,
    last_copy_ms: int | None,
) -> MigrationStatus:
    """The status from what was read; pure."""
    topics = []
    for topic in scope.topics:
        partitions = sorted((key, end) for key, end in source_ends.items() if key[0] == topic)
        # A transaction's commit marker takes an offset the mirror never copies: a partition whose
        # offsets past the mirror's hold no committed record is drained.
        behind = [
            key
            for key, end in partitions
            if end > mirrored.get(key, 0)
            and not (key in first_unmirrored_ms and first_unmirrored_ms[key] is None)
        ]
        lag = sum(end - mirrored.get(key, 0) for key, end in partitions if key in behind)
        never = sum(1 for key in behind if key not in mirrored)
        stamps = [stamp for key in behind if (stamp := first_unmirrored_ms.get(key)) is not None]
        lag_seconds = max((now_ms - min(stamps)) // 1000, 0) if stamps else None
        unknown = len(stamps) < len(behind)
        lagging = bool(behind) and (
            unknown or lag_seconds is None or lag_seconds > scope.tolerated_lag_seconds
        )
        topics.append(TopicMirror(topic, sum(end for _, end in partitions), lag, never, lag_seconds, lagging))
    groups = []
    for service in sorted(scope.services, key=lambda s: s.name):
        if not service.group or service.group_is_prefix:
            continue
        for topic in service.consumes:
            groups.append(
                GroupPosition(
                    group=service.group,
                    service=service.name,
                    topic=topic,
                    source_behind=_behind(service.group, topic, source_committed, source_ends),
                    target_behind=_behind(service.group, topic, target_committed, target_ends),
                    active_on_source=service.group in active.get("source", set()),
                    active_on_target=service.group in active.get("target", set()),
                )
            )
    sides = {service.name: service.side for service in sorted(scope.services, key=lambda s: s.name)}
    safe, blocked = _next_steps(
        scope.services,
        sides,
        groups,
        lagging={t.topic for t in topics if t.lagging},
        undrained={t.topic for t in topics if t.lag},
    )
    return MigrationStatus(
        topics=tuple(topics),
        groups=tuple(groups),
        sides=sides,
        safe_moves=tuple(safe),
        blocked_moves=tuple(blocked),
        idle_seconds=None if last_copy_ms is None else max((now_ms - last_copy_ms) // 1000, 0),
        keep_seconds=scope.keep_seconds,
        per_instance_groups={
            service.name: service.group
            for service in sorted(scope.services, key=lambda s: s.name)
            if service.group and service.group_is_prefix and service.consumes
        },
    )


def _behind(
    group: str,
    topic: str,
    committed: Mapping[tuple[str, str, int], int],
    ends: Mapping[tuple[str, int], int],
) -> int | None:
    """Records between the group's committed offsets and the end; None when it committed none."""
    positions = {(t, p): offset for (g, t, p), offset in committed.items() if g == group and t == topic}
    if not positions:
        return None
    return sum(max(end - positions.get(key, 0), 0) for key, end in ends.items() if key[0] == topic)


def _next_steps(
    services: Iterable[MovingService],
    sides: Mapping[str, str],
    groups: list[GroupPosition],
    lagging: set[str],
    undrained: set[str],
) -> tuple[list[str], list[str]]:
    """Which services on the source may move to the target now, and why the others may not.

    Consumers first: a consumer may move once the mirror has caught up on its topics and its group
    is translated on the target (and no longer consuming on the source). A producer may move once
    every consumer of every topic it writes is on the target: from then on its events exist on
    the target only. It starts on the target once the mirror drained its topics after it stopped
    on the source (else the source's last events for a key would arrive after its new ones)."""
    services = sorted(services, key=lambda s: s.name)
    safe, blocked = [], []
    for service in services:
        if service.side != "source":
            continue
        reasons = []
        for topic in service.produces:
            waiting = [
                other.name
                for other in services
                if topic in other.consumes and other.name != service.name and sides[other.name] != "target"
            ]
            if waiting:
                reasons.append(
                    f"{', '.join(waiting)} still consume{'s' if len(waiting) == 1 else ''} {topic} "
                    "on the source"
                )
        for topic in service.consumes:
            if topic in lagging:
                reasons.append(f"the mirror still lags on {topic}")
        own = [g for g in groups if g.service == service.name]
        untranslated = [g.topic for g in own if g.source_behind is not None and not g.translated]
        if untranslated:
            reasons.append(
                f"group {service.group} is not yet translated on the target for {', '.join(untranslated)}"
            )
        if any(g.active_on_source for g in own):
            reasons.append(
                f"group {service.group} still has members on the source (stop it there first: its "
                "translated position on the target then holds its last commit, and fewer records are "
                "read twice; MirrorMaker writes a group's offsets only while it has no members on the target)"
            )
        per_instance = (
            f"; its groups are per instance ({service.group}*), not translated: {PER_INSTANCE_START}"
            if service.group_is_prefix and service.consumes
            else ""
        )
        if reasons:
            blocked.append(f"{service.name}: " + "; ".join(reasons))
        elif service.produces:
            waiting = sorted(set(service.produces) & undrained)
            drain = (
                f" (the mirror has yet to copy {', '.join(waiting)})"
                if waiting
                else " (its topics are drained)"
            )
            safe.append(
                f"{service.name}: may move to target: stop it on the source, start it on the target once "
                f"the mirror drained its topics{drain}{per_instance}"
            )
        else:
            safe.append(f"{service.name}: may move to target{per_instance}")
    return safe, blocked


def to_text(status: MigrationStatus, stack: str) -> str:
    lines = [f"migration of stack {stack}"]
    lines.append("mirror (source -> target):")
    for topic in status.topics:
        never = (
            f", {topic.partitions_never_mirrored} partition(s) not mirrored yet"
            if topic.partitions_never_mirrored
            else ""
        )
        age = "" if topic.lag_seconds is None else f", oldest waiting {topic.lag_seconds} s"
        flag = " (lagging)" if topic.lagging else ""
        lines.append(f"  {topic.topic}: lag {topic.lag} of {topic.source_end} records{age}{never}{flag}")
    lines.append("consumer groups (records behind the end: source / translated on target):")
    for group in status.groups:
        source = "-" if group.source_behind is None else str(group.source_behind)
        target = "-" if group.target_behind is None else str(group.target_behind)
        rereads = "" if group.rereads is None else f", would re-read {group.rereads}"
        lines.append(f"  {group.group} on {group.topic} ({group.service}): {source} / {target}{rereads}")
    for service, prefix in status.per_instance_groups.items():
        lines.append(f"  {prefix}* ({service}): per instance, not translated: {PER_INSTANCE_START}")
    lines.append("services:")
    lines += [f"  {name}: {side}" for name, side in status.sides.items()]
    lines.append("next steps:")
    lines += [f"  {step}" for step in status.safe_moves]
    lines += [f"  not yet {step}" for step in status.blocked_moves]
    if status.all_on_target:
        if status.source_can_go:
            lines.append(
                "every service is on the target and the mirror has been idle for the keep period: "
                "the source can go"
            )
        else:
            idle = (
                "it has committed no copy yet"
                if status.idle_seconds is None
                else f"idle for {status.idle_seconds} s"
            )
            lines.append(
                f"every service is on the target; the source can go after the mirror is idle for "
                f"{status.keep_seconds} s ({idle}, lag {status.lag})"
            )
    lines.append("in sync" if status.healthy else "NOT in sync: wait before the next move")
    return "\n".join(lines) + "\n"


def to_json(status: MigrationStatus) -> str:
    document = {
        "in_sync": status.healthy,
        "lag": status.lag,
        "topics": [topic.__dict__ for topic in status.topics],
        "groups": [{**group.__dict__, "rereads": group.rereads} for group in status.groups],
        "services": status.sides,
        "safe_moves": list(status.safe_moves),
        "blocked_moves": list(status.blocked_moves),
        "idle_seconds": status.idle_seconds,
        "per_instance_groups": status.per_instance_groups,
        "keep_seconds": status.keep_seconds,
        "source_can_go": status.source_can_go,
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
