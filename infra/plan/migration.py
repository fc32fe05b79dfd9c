"""A migrating stack's plan (settings.migration): the two clusters MirrorMaker 2 joins, what it
mirrors, exactly the grants its principal needs on each side, and where each service stands.

Why each grant (docs/migration.md lists the same; each was shown needed, or not, with
MirrorMaker 2 4.1.1 between two real brokers, and the live test removes each one):
source (read-only: offset syncs are kept on the target, KIP-716):
- TOPIC READ on each mirrored topic: MirrorSourceTask consumes it (READ implies DESCRIBE, which
  listing and metadata need);
- GROUP DESCRIBE on each synced group: MirrorCheckpointConnector lists the groups and reads their
  committed offsets (without it: GroupAuthorizationException, no offset translated).
  Not granted, shown unneeded: CLUSTER DESCRIBE (the broker answers the group listing filtered
  by GROUP DESCRIBE) and TOPIC DESCRIBE_CONFIGS (read only to create a topic the target lacks or
  to sync configs, and the platform creates the target's topics and owns their configs).
target:
- TOPIC WRITE on each mirrored topic: the replicated records; READ on it too: writing a group's
  translated offsets (sync.group.offsets) is an offset commit, which needs READ on the topic
  (without it: "TopicAuthorizationException: Failed altering group offsets");
- GROUP READ on each synced group: the offset commit for that group;
- CREATE, READ, WRITE on the offset-syncs topic and the checkpoints topic (MirrorMaker names them
  and creates them; a restarted checkpoint task reads its checkpoints back, CheckpointStore);
- CREATE, READ, WRITE on the Connect worker's config/offset/status topics (under the internal
  prefix) and READ on its group: dedicated mode runs a Connect worker against the target.
"""

from __future__ import annotations

from infra.model.cluster_connection import ExistingClusterSettings
from infra.model.migration_settings import ClusterSide, MigrationSettings
from infra.model.names import PLATFORM_MIRROR, principal_name
from infra.plan.model import (
    CLUSTER_RESOURCE_NAME,
    AclBinding,
    ClusterPlan,
    GrantSpec,
    MigrationPlan,
    MirroredGroup,
    MirrorSide,
    Operation,
    bindings_of,
)

# The Kubernetes Secret keys and the env variables MirrorMaker 2 reads its two passwords from
# (`${env:...}` through the EnvVarConfigProvider): the properties file never holds a password.
MIRROR_SOURCE_PASSWORD_ENV = "MIRROR_SOURCE_PASSWORD"  # pragma: allowlist secret
MIRROR_TARGET_PASSWORD_ENV = "MIRROR_TARGET_PASSWORD"  # pragma: allowlist secret
# The secret stack output holding MirrorMaker 2's login per side ({source|target: {username,
# password}}): where `migration mirror` (no Kubernetes Secret to read) gets its two passwords.
MIRROR_CREDENTIALS_OUTPUT = "migration_mirror_credentials"
SOURCE_ALIAS = "source"
TARGET_ALIAS = "target"
# What MirrorMaker 2 names its own topics on the target with the identity policy and
# offset-syncs.topic.location = target (DefaultReplicationPolicy.offsetSyncsTopic, checkpointsTopic).
# The offset-syncs topic is named after the cluster it is not on (MirrorSourceConfig.offsetSyncsTopic):
# kept on the target, it is "mm2-offset-syncs.source.internal" (seen on a real pair of brokers).
OFFSET_SYNCS_TOPIC = f"mm2-offset-syncs.{SOURCE_ALIAS}.internal"
CHECKPOINTS_TOPIC = f"{SOURCE_ALIAS}.checkpoints.internal"
MIRROR_INTERNAL_OPERATIONS: tuple[Operation, ...] = ("CREATE", "READ", "WRITE")
# The replication factor MirrorMaker 2 and its Connect worker ask for their own topics on the
# target: the broker's default (-1, KIP-464) on a broker we configure; on Confluent Cloud, whose
# default.replication.factor is 3 and not editable (its topic configuration reference), 3 itself:
# the value it certainly accepts, where -1 relies on the default being honoured.
BROKER_DEFAULT_REPLICATION = -1
CONFLUENT_REPLICATION = 3


def source_cluster(source: ExistingClusterSettings) -> ClusterPlan:
    """The source as the services on it reach it (their env), in the shape of the stack's cluster."""
    return ClusterPlan(
        provider="kafka",
        security_protocol=source.security_protocol,
        sasl_mechanism=source.sasl_mechanism,
        bootstrap=",".join(source.bootstrap_servers),
        shared_from_stack=None,
        provider_settings=source,
        admin_principal=None,
    )


def mirror_principal(domain: str, stack: str) -> str:
    return principal_name(domain, stack, PLATFORM_MIRROR)


def plan_migration(
    migration: MigrationSettings,
    *,
    domain: str,
    stack: str,
    cluster: ClusterPlan,
    sides: dict[str, ClusterSide],
    topics: list[str],
    groups: list[MirroredGroup],
    target_needs_idempotent_write: bool,
) -> MigrationPlan:
    principal = mirror_principal(domain, stack)
    internal_prefix = f"mm2.{domain}.{stack}"
    source_settings = migration.source
    return MigrationPlan(
        source=MirrorSide(
            alias=SOURCE_ALIAS,
            bootstrap=",".join(source_settings.bootstrap_servers),
            security_protocol=source_settings.security_protocol,
            sasl_mechanism=source_settings.sasl_mechanism,
            principal=principal,
            acls=_source_acls(principal, topics, groups),
        ),
        target=MirrorSide(
            alias=TARGET_ALIAS,
            bootstrap=cluster.bootstrap,
            security_protocol=cluster.security_protocol,
            sasl_mechanism=cluster.sasl_mechanism,
            principal=principal,
            acls=_target_acls(
                principal, topics, groups, internal_prefix, idempotent_write=target_needs_idempotent_write
            ),
        ),
        source_settings=source_settings,
        service_sides=dict(sorted(sides.items())),
        topics=sorted(topics),
        groups=sorted(group.name for group in groups if not group.prefix),
        group_prefixes=sorted(group.name for group in groups if group.prefix),
        sync_interval_seconds=migration.mirror.sync_interval,
        keep_seconds=migration.keep // 1000,
        image=migration.mirror.image,
        internal_prefix=internal_prefix,
        internal_replication=CONFLUENT_REPLICATION
        if cluster.provider == "confluent"
        else BROKER_DEFAULT_REPLICATION,
        adopt_users=sorted(migration.adopt.users),
    )


def _group_grants(groups: list[MirroredGroup], operation: Operation) -> list[GrantSpec]:
    return [
        ("GROUP", group.name, "PREFIXED" if group.prefix else "LITERAL", operation)
        for group in sorted(groups, key=lambda group: (group.name, group.prefix))
    ]


def _source_acls(principal: str, topics: list[str], groups: list[MirroredGroup]) -> list[AclBinding]:
    grants: list[GrantSpec] = [("TOPIC", topic, "LITERAL", "READ") for topic in sorted(topics)]
    grants += _group_grants(groups, "DESCRIBE")
    return _bindings(principal, grants)


def _target_acls(
    principal: str,
    topics: list[str],
    groups: list[MirroredGroup],
    internal_prefix: str,
    *,
    idempotent_write: bool,
) -> list[AclBinding]:
    grants: list[GrantSpec] = []
    for topic in sorted(topics):
        grants += [("TOPIC", topic, "LITERAL", "READ"), ("TOPIC", topic, "LITERAL", "WRITE")]
    grants += _group_grants(groups, "READ")
    for topic in (OFFSET_SYNCS_TOPIC, CHECKPOINTS_TOPIC):
        grants += [("TOPIC", topic, "LITERAL", operation) for operation in MIRROR_INTERNAL_OPERATIONS]
    grants += [
        ("TOPIC", f"{internal_prefix}.", "PREFIXED", operation) for operation in MIRROR_INTERNAL_OPERATIONS
    ]
    grants.append(("GROUP", internal_prefix, "LITERAL", "READ"))
    if idempotent_write:
        grants.append(("CLUSTER", CLUSTER_RESOURCE_NAME, "LITERAL", "IDEMPOTENT_WRITE"))
    return _bindings(principal, grants)


def _bindings(principal: str, grants: list[GrantSpec]) -> list[AclBinding]:
    acls = set(bindings_of(principal, PLATFORM_MIRROR, grants))
    return sorted(acls, key=lambda acl: acl.sort_key)
