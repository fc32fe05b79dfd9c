"""How far each watched consumer is behind, read from a live cluster with the Admin API.

A handful of requests whatever the size of the estate: one metadata request, one ListGroups,
one DescribeGroups for every group at once, the groups' committed offsets (one request per
group, all in flight together: the protocol takes one group per request), one ListOffsets each
for the earliest and the latest offsets of every partition, and one fetch per lagging partition
for the timestamp of its first unconsumed record.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from infra.live.cluster_admin import committed_offsets, connect
from infra.live.kafka_broker import Broker
from infra.live.live_cluster import ClusterUnreachable, admin_login
from infra.plan.model import ConsumerWatch

MISSING = "MISSING"  # the state of a group the cluster does not know (yet)


@dataclass(frozen=True)
class PartitionLag:
    partition: int
    committed: int | None  # None: never committed: it will start at the earliest offset
    earliest: int
    latest: int

    @property
    def lag(self) -> int:
        start = self.committed if self.committed is not None else self.earliest
        return max(self.latest - max(start, self.earliest), 0)


@dataclass(frozen=True)
class GroupLag:
    """One consumer group's position on one topic."""

    group: str
    state: str
    members: int
    partitions: tuple[PartitionLag, ...]
    oldest_unconsumed_ms: int | None  # timestamp of the oldest first-unconsumed record

    @property
    def messages(self) -> int:
        return sum(partition.lag for partition in self.partitions)


@dataclass(frozen=True)
class WatchLag:
    watch: ConsumerWatch
    groups: tuple[GroupLag, ...]  # several for a prefix (per-instance or Connect sink groups)


def read_lag(broker: Broker, watches: Iterable[ConsumerWatch], timeout: float = 20) -> list[WatchLag]:
    watches = list(watches)
    admin, _ = connect(admin_login(broker), within=timeout)
    try:
        return _read(admin, broker, watches, timeout)
    except KafkaException as error:
        raise ClusterUnreachable(
            f"cannot read the cluster at {broker.bootstrap}: {error.args[0].str()}"
        ) from None


def _read(admin: AdminClient, broker: Broker, watches: list[ConsumerWatch], timeout: float) -> list[WatchLag]:
    metadata = admin.list_topics(timeout=timeout)
    listed = admin.list_consumer_groups(request_timeout=timeout).result()
    existing = sorted(group.group_id for group in listed.valid)
    groups_of = {id(watch): _matching(watch, existing) for watch in watches}
    wanted = sorted({group for groups in groups_of.values() for group in groups if group in existing})
    described = admin.describe_consumer_groups(wanted, request_timeout=timeout) if wanted else {}
    descriptions = {group: future.result() for group, future in described.items()}
    committed = committed_offsets(admin, wanted, within=timeout)
    partitions = [
        TopicPartition(watch.topic, partition)
        for watch in watches
        if watch.topic in metadata.topics
        for partition in sorted(metadata.topics[watch.topic].partitions)
    ]
    earliest = _offsets(admin, partitions, OffsetSpec.earliest(), timeout)
    latest = _offsets(admin, partitions, OffsetSpec.latest(), timeout)
    positions = {
        (group, watch.topic): tuple(
            PartitionLag(
                tp.partition,
                committed.get((group, watch.topic, tp.partition)),
                earliest[(tp.topic, tp.partition)],
                latest[(tp.topic, tp.partition)],
            )
            for tp in partitions
            if tp.topic == watch.topic
        )
        for watch in watches
        for group in groups_of[id(watch)]
    }
    firsts = _first_unconsumed_timestamps(broker, positions, timeout)
    result = []
    for watch in watches:
        group_lags = []
        for group in groups_of[id(watch)]:
            own = positions[(group, watch.topic)]
            if watch.group_is_prefix and all(p.committed is None for p in own):
                continue  # a group under the prefix that does not read this topic
            description = descriptions.get(group)
            keys = [(watch.topic, p.partition, group) for p in own]
            stamps = [firsts[key] for key in keys if key in firsts]
            state = MISSING if description is None else getattr(description.state, "name", description.state)
            group_lags.append(
                GroupLag(
                    group=group,
                    state=str(state),
                    members=0 if description is None else len(description.members),
                    partitions=own,
                    oldest_unconsumed_ms=min(stamps) if stamps else None,
                )
            )
        result.append(WatchLag(watch, tuple(group_lags)))
    return result


def _matching(watch: ConsumerWatch, existing: list[str]) -> list[str]:
    """The groups a watch covers; an exact group the cluster does not know yet counts too (it
    will read from the earliest offsets when it starts)."""
    if watch.group_is_prefix:
        return [group for group in existing if group.startswith(watch.group)]
    return [watch.group]


def _offsets(
    admin: AdminClient, partitions: list[TopicPartition], spec: OffsetSpec, timeout: float
) -> dict[tuple[str, int], int]:
    if not partitions:
        return {}
    futures = admin.list_offsets({tp: spec for tp in partitions}, request_timeout=timeout)
    return {(tp.topic, tp.partition): future.result().offset for tp, future in futures.items()}


def _first_unconsumed_timestamps(
    broker: Broker,
    positions: dict[tuple[str, str], tuple[PartitionLag, ...]],
    timeout: float,
) -> dict[tuple[str, int, str], int]:
    """(topic, partition, group) -> timestamp (ms) of the group's first unconsumed record there."""
    wanted: dict[tuple[str, int, int], list[str]] = {}
    for (group, topic), partitions in positions.items():
        for p in partitions:
            if p.lag > 0:
                offset = max(p.committed if p.committed is not None else p.earliest, p.earliest)  # retention
                wanted.setdefault((topic, p.partition, offset), []).append(group)
    if not wanted:
        return {}
    # Assigned, not subscribed: reads without joining or committing under any group of the plan.
    consumer = broker.reader("lag")
    found: dict[tuple[str, int, str], int] = {}
    deadline = time.monotonic() + timeout
    try:
        while wanted and time.monotonic() < deadline:
            # A partition is assigned at one offset at a time: one round per distinct offset.
            round_: dict[tuple[str, int], int] = {}
            for topic, partition, offset in sorted(wanted):
                round_.setdefault((topic, partition), offset)
            consumer.assign([TopicPartition(t, p, o) for (t, p), o in round_.items()])
            while round_ and time.monotonic() < deadline:
                message = consumer.poll(1.0)
                if message is None or message.error() is not None:
                    continue
                key = (message.topic(), message.partition())
                # The first record at or after the offset (compaction may have removed that one).
                if key in round_ and message.offset() >= round_[key]:
                    offset = round_.pop(key)
                    for group in wanted.pop((*key, offset)):
                        found[(*key, group)] = message.timestamp()[1]
                    consumer.incremental_unassign([TopicPartition(*key)])
    finally:
        consumer.close()
    return found
