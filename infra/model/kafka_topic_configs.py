"""Topic-level configuration keys documented by Apache Kafka (topic configs, 3.x/4.x).

Unknown keys are rejected so a typo such as ``retention.msec`` never reaches a cluster.
"""

from __future__ import annotations

# What Confluent Cloud lets a topic set (confluentinc/terraform-provider-confluent
# resource_kafka_topic.go `editableTopicSettings`; Confluent's topic configuration reference marks
# the rest "not editable"): anything else passes Kafka's own checks and fails in `pulumi up`.
CONFLUENT_EDITABLE_TOPIC_CONFIGS: frozenset[str] = frozenset(
    {
        "cleanup.policy",
        "confluent.key.schema.validation",
        "confluent.key.subject.name.strategy",
        "confluent.topic.type",
        "confluent.value.schema.validation",
        "confluent.value.subject.name.strategy",
        "delete.retention.ms",
        "max.compaction.lag.ms",
        "max.message.bytes",
        "message.timestamp.after.max.ms",
        "message.timestamp.before.max.ms",
        "message.timestamp.difference.max.ms",
        "message.timestamp.type",
        "min.compaction.lag.ms",
        "min.insync.replicas",
        "retention.bytes",
        "retention.ms",
        "segment.bytes",
        "segment.ms",
    }
)

DOCUMENTED_TOPIC_CONFIGS: frozenset[str] = frozenset(
    {
        "cleanup.policy",
        "compression.gzip.level",
        "compression.lz4.level",
        "compression.type",
        "compression.zstd.level",
        "delete.retention.ms",
        "file.delete.delay.ms",
        "flush.messages",
        "flush.ms",
        "follower.replication.throttled.replicas",
        "index.interval.bytes",
        "leader.replication.throttled.replicas",
        "local.retention.bytes",
        "local.retention.ms",
        "max.compaction.lag.ms",
        "max.message.bytes",
        "message.downconversion.enable",
        "message.format.version",
        "message.timestamp.after.max.ms",
        "message.timestamp.before.max.ms",
        "message.timestamp.difference.max.ms",
        "message.timestamp.type",
        "min.cleanable.dirty.ratio",
        "min.compaction.lag.ms",
        "min.insync.replicas",
        "preallocate",
        "remote.log.copy.disable",
        "remote.log.delete.on.disable",
        "remote.storage.enable",
        "retention.bytes",
        "retention.ms",
        "segment.bytes",
        "segment.index.bytes",
        "segment.jitter.ms",
        "segment.ms",
        "unclean.leader.election.enable",
    }
)

# Keys the topology expresses with its own fields; setting them in `config` too would
# leave two sources of truth for one value.
MODELLED_TOPIC_CONFIGS: dict[str, str] = {
    "retention.ms": "retention",
    "cleanup.policy": "cleanup",
    "min.insync.replicas": "min_insync_replicas in the stack settings",
}


def topic_config_problem(key: str) -> str | None:
    """Why ``key`` may not appear in a topic's ``config`` mapping, or None."""
    if key in MODELLED_TOPIC_CONFIGS:
        return f"set '{key}' with {MODELLED_TOPIC_CONFIGS[key]}, not in config"
    if key not in DOCUMENTED_TOPIC_CONFIGS:
        return f"'{key}' is not a documented Kafka topic config"
    return None
