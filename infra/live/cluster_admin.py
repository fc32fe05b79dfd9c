"""The one Kafka-admin core: every path that reads or changes a cluster's topics, SCRAM users and
ACLs through the Admin API goes through here (`make local`'s converge, the Pulumi dynamic
providers behind MSK and existing-cluster stacks, the program's preflight). One login, one
request timeout, one visibility wait, one way to write a grant, one batch size.

It stays free of pydantic and the plan's models: the dynamic providers' plugin imports it on
every preview (tests/test_layers.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import confluent_kafka
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

# Every request waits at most this long for its answer.
REQUEST_TIMEOUT_S = 30
# A login that has not answered by then is reported as unreachable, not retried for minutes.
CONNECT_WITHIN_S = 10
# Brokers learn of a change from the metadata log a moment after the controller commits it.
VISIBLE_WITHIN_S = 60
# A KRaft controller refuses a request that would write more than 10,000 records
# (POLICY_VIOLATION "Unable to perform excessively large batch operation"): a topic is one record
# plus one per partition and per config, an ACL or a SCRAM credential one each. Half the cap
# leaves room for what a broker version adds per object.
RECORDS_PER_REQUEST = 5_000
SCRAM_ITERATIONS = 4096
MECHANISMS = {"SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256, "SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512}
# Names as the plan writes them; librdkafka calls the cluster resource BROKER.
RESOURCE_TYPES = {
    "TOPIC": ResourceType.TOPIC,
    "GROUP": ResourceType.GROUP,
    "CLUSTER": ResourceType.BROKER,
    "TRANSACTIONAL_ID": ResourceType.TRANSACTIONAL_ID,
}
_RESOURCE_TYPE_NAMES = {value: key for key, value in RESOURCE_TYPES.items()}
EVERY_ACL = AclBindingFilter(
    ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
)
T = TypeVar("T")

TopicSpec = dict[str, Any]  # {"partitions": int, "replication_factor": int, "config": {key: value}}


class ClusterUnreachable(Exception):
    """The cluster did not answer, or refused the admin's login; nothing was changed."""


class Refused(Exception):
    """A change the core will not make, raised before it changes anything."""


class Unsupported(Refused):
    """The cluster lacks an Admin API call this project needs (e.g. SCRAM users on Redpanda ≤ 25.1)."""


# --- the login -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdminLogin:
    """How to reach the cluster as its admin. The password never reaches a message."""

    bootstrap_servers: tuple[str, ...]
    security_protocol: str  # PLAINTEXT | SASL_PLAINTEXT | SASL_SSL
    sasl_mechanism: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    ca_cert: str | None = None  # PEM
    skip_tls_verify: bool = False

    @property
    def address(self) -> str:
        return ",".join(self.bootstrap_servers)

    def describe(self) -> str:
        who = f" as '{self.username}' ({self.sasl_mechanism})" if self.username else ""
        return f"{self.address}{who}"

    def client_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "bootstrap.servers": self.address,
            "security.protocol": self.security_protocol,
            "log_level": 0,
        }
        if self.security_protocol.startswith("SASL"):
            config |= {
                "sasl.mechanism": self.sasl_mechanism,
                "sasl.username": self.username,
                "sasl.password": self.password,
            }
        if self.ca_cert:
            config["ssl.ca.pem"] = self.ca_cert
        if self.skip_tls_verify:
            config["enable.ssl.certificate.verification"] = "false"
        return config

    def with_user(self, username: str, password: str, mechanism: str) -> AdminLogin:
        return AdminLogin(
            self.bootstrap_servers,
            self.security_protocol,
            mechanism,
            username,
            password,
            self.ca_cert,
            self.skip_tls_verify,
        )


def connect(login: AdminLogin, within: float = CONNECT_WITHIN_S) -> tuple[AdminClient, str]:
    """An AdminClient that has answered, and the cluster's id. Raises ClusterUnreachable naming
    the address and the admin: at once when every broker refused the connection or the login
    failed, after ``within`` seconds when nothing answers at all."""
    failures: list[str] = []
    down: list[str] = []

    def on_error(error: KafkaError) -> None:
        if error.code() in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED):
            failures.append(error.str())
        elif error.code() == KafkaError._ALL_BROKERS_DOWN:
            down.append(error.str())

    admin = AdminClient(login.client_config() | {"error_cb": on_error})
    deadline = time.monotonic() + within
    while True:
        try:
            metadata = admin.list_topics(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            return admin, str(metadata.cluster_id)
        except KafkaException as error:
            admin.poll(0)  # error_cb is served only by poll()
            if failures:
                raise ClusterUnreachable(
                    f"the login to {login.describe()} failed: {failures[-1]}{old_librdkafka_hint()}"
                ) from None
            if down or time.monotonic() >= deadline:
                reason = down[-1] if down else error.args[0].str()
                waited = "" if down else f" within {within:g} s"
                raise ClusterUnreachable(
                    f"the Kafka cluster at {login.describe()} did not answer{waited}: {reason}"
                ) from None


def can_log_in(login: AdminLogin, within: float = CONNECT_WITHIN_S) -> bool:
    try:
        connect(login, within)
    except ClusterUnreachable:
        return False
    return True


SCRAM_FIXED_IN = (2, 6, 1)  # librdkafka#4895: Kafka 4.x refuses older clients' SCRAM proofs


def old_librdkafka_hint() -> str:
    version = confluent_kafka.libversion()[0]
    numbers = tuple(int(part) for part in version.split("-")[0].split(".")[:3])
    if numbers >= SCRAM_FIXED_IN:
        return ""
    return f" (librdkafka {version} is older than 2.6.1, whose SCRAM logins Kafka 4.x refuses)"


# --- waiting and batching --------------------------------------------------------------------


def results(futures: Mapping[Any, Future[Any]]) -> dict[Any, Any]:
    return {key: future.result() for key, future in futures.items()}


def until_visible(missing: Callable[[], Sequence[str]], within: float = VISIBLE_WITHIN_S) -> None:
    """Until ``missing()`` is empty; a TimeoutError names what is still missing."""
    deadline = time.monotonic() + within
    while True:
        left = missing()
        if not left:
            return
        if time.monotonic() > deadline:
            shown = ", ".join(list(left)[:10]) + (f" and {len(left) - 10} more" if len(left) > 10 else "")
            raise TimeoutError(f"not visible on the cluster after {within:g} s: {shown}")
        time.sleep(0.2)


def batches(items: Sequence[T], records: Callable[[T], int] = lambda _: 1) -> Iterator[list[T]]:
    """``items`` in requests of at most RECORDS_PER_REQUEST records each."""
    batch: list[T] = []
    size = 0
    for item in items:
        weight = records(item)
        if batch and size + weight > RECORDS_PER_REQUEST:
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += weight
    if batch:
        yield batch


# --- topics ----------------------------------------------------------------------------------


def normalized(key: str, value: str) -> str:
    return ",".join(sorted(value.split(","))) if key == "cleanup.policy" else value


def read_topics(admin: AdminClient, planned: Mapping[str, TopicSpec]) -> dict[str, TopicSpec]:
    """The live partitions, replication and planned config keys of those planned topics that
    exist. A config equal to the plan (after normalizing) reads back as the plan's own string."""
    metadata = admin.list_topics(timeout=REQUEST_TIMEOUT_S).topics
    names = sorted(name for name in planned if name in metadata)
    live: dict[str, TopicSpec] = {}
    for batch in batches(names, lambda _: 1):
        resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in batch]
        for resource, entries in results(
            admin.describe_configs(resources, request_timeout=REQUEST_TIMEOUT_S)
        ).items():
            name = resource.name
            partitions = metadata[name].partitions
            config = {}
            for key, value in planned[name]["config"].items():
                entry = entries.get(key)
                actual = entry.value if entry is not None and entry.value is not None else "(unset)"
                config[key] = value if normalized(key, actual) == normalized(key, value) else actual
            live[name] = {
                "partitions": len(partitions),
                "replication_factor": len(partitions[0].replicas) if partitions else 0,
                "config": config,
            }
    return live


def topics_with_records(admin: AdminClient, names: Iterable[str]) -> set[str]:
    """Those of ``names`` that ever held a record (a partition's end offset above 0)."""
    metadata = admin.list_topics(timeout=REQUEST_TIMEOUT_S).topics
    requests = {
        TopicPartition(name, partition): OffsetSpec.latest()
        for name in sorted(set(names))
        if name in metadata
        for partition in metadata[name].partitions
    }
    if not requests:
        return set()
    ends = results(admin.list_offsets(requests, request_timeout=REQUEST_TIMEOUT_S))
    return {partition.topic for partition, info in ends.items() if info.offset > 0}


def differences(planned: TopicSpec, live: TopicSpec) -> str:
    found = [
        f"{key} {live[key]}, planned {planned[key]}"
        for key in ("partitions", "replication_factor")
        if live[key] != planned[key]
    ]
    found += [
        f"{key} {live['config'].get(key)}, planned {value}"
        for key, value in sorted(planned["config"].items())
        if live["config"].get(key) != value
    ]
    return "; ".join(found)


def topic_refusals(
    planned: Mapping[str, TopicSpec],
    live: Mapping[str, TopicSpec],
    *,
    owned: Iterable[str],
    with_records: Iterable[str],
) -> list[str]:
    """Why these planned topics must not be applied to the cluster; empty when they may.

    A topic on the cluster that the stack does not own (``owned``: it deployed or adopted it) is
    never changed or taken over, even one exactly as planned: topic names carry no stack name, so
    an empty topic that matches may be another stack's on the same cluster. ``with_records``
    only sharpens the message."""
    owned, with_records = set(owned), set(with_records)
    problems = []
    for name, spec in sorted(planned.items()):
        found = live.get(name)
        if found is None:
            continue
        if found["partitions"] > spec["partitions"]:
            problems.append(
                f"topic {name} has {found['partitions']} partitions and would shrink to "
                f"{spec['partitions']}: Kafka cannot remove partitions"
            )
        if found["replication_factor"] != spec["replication_factor"]:
            problems.append(
                f"topic {name} has replication factor {found['replication_factor']}, planned "
                f"{spec['replication_factor']}: change it with a partition reassignment, not here"
            )
        if name in owned:
            continue
        adopt = (
            "Adopt it on purpose: list it in settings.adopt.topics (`kafka-platform import` writes "
            "the list; also for a topic an interrupted `pulumi up` of this stack created)"
        )
        if found != spec:
            problems.append(
                f"topic {name} already exists on the cluster and differs from the plan "
                f"({differences(spec, found)}), and it is not this stack's: nothing was changed. {adopt}"
            )
        else:
            held = "holds records" if name in with_records else "holds no record"
            problems.append(
                f"topic {name} already exists on the cluster (exactly as planned; it {held}), and it "
                f"is not this stack's: nothing was changed. {adopt}"
            )
    return problems


def create_topics(admin: AdminClient, specs: Mapping[str, TopicSpec]) -> list[str]:
    """Create these topics in batches the controller accepts; returns the names created. On a
    failure the topics this call did create are named in the error's ``created`` attribute."""
    created: list[str] = []
    new = [
        NewTopic(name, int(spec["partitions"]), int(spec["replication_factor"]), config=dict(spec["config"]))
        for name, spec in sorted(specs.items())
    ]
    failures = []
    try:
        for batch in batches(new, lambda t: 1 + t.num_partitions + len(t.config)):
            for name, future in admin.create_topics(batch, request_timeout=REQUEST_TIMEOUT_S).items():
                try:
                    future.result()
                    created.append(name)
                except KafkaException as exc:
                    failures.append(f"topic {name}: {exc.args[0].str()}")
    except Exception as exc:  # a later batch's request failed as a whole
        raise PartlyApplied(f"could not create topics: {exc}", created=sorted(created)) from exc
    if failures:
        raise PartlyApplied("could not create " + "; ".join(failures), created=sorted(created))
    return sorted(created)


class PartlyApplied(Exception):
    """A batch of which some objects were applied (``created``) and others failed."""

    def __init__(self, message: str, created: Sequence[str]) -> None:
        super().__init__(message)
        self.created = list(created)


def grow_partitions(admin: AdminClient, counts: Mapping[str, int]) -> None:
    new = [NewPartitions(name, int(count)) for name, count in sorted(counts.items())]
    for batch in batches(new, lambda p: p.new_total_count):
        _named(admin.create_partitions(batch, request_timeout=REQUEST_TIMEOUT_S), "partitions of topic")


def alter_topic_configs(
    admin: AdminClient,
    configs: Mapping[str, Mapping[str, str]],
    removed: Mapping[str, Iterable[str]] | None = None,
) -> None:
    """Per topic: set these configs and return those ``removed`` to the cluster's default; the
    topic's other configs stay as they are."""
    resources = []
    for name in sorted(set(configs) | set(removed or {})):
        entries = [
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
            for key, value in sorted(configs.get(name, {}).items())
        ]
        entries += [
            ConfigEntry(key, None, incremental_operation=AlterConfigOpType.DELETE)
            for key in sorted((removed or {}).get(name, ()))
        ]
        if entries:
            resources.append(ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=entries))
    for batch in batches(resources, lambda r: len(r.incremental_configs)):
        _named(admin.incremental_alter_configs(batch, request_timeout=REQUEST_TIMEOUT_S), "configs of topic")


def wait_for_topics(admin: AdminClient, planned: Mapping[str, TopicSpec]) -> None:
    def missing() -> list[str]:
        live = read_topics(admin, planned)
        return [f"topic {name}" for name, spec in sorted(planned.items()) if live.get(name) != spec]

    until_visible(missing)


def delete_topics(admin: AdminClient, names: Iterable[str]) -> None:
    """Delete these topics (those already gone are fine) and wait until no broker lists them:
    until then a topic of the same name cannot be created."""
    names = sorted(set(names))
    for batch in batches(names):
        for name, future in admin.delete_topics(batch, request_timeout=REQUEST_TIMEOUT_S).items():
            try:
                future.result()
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise KafkaException(f"topic {name}: {exc.args[0].str()}") from None
    if names:
        until_visible(
            lambda: [
                f"the deletion of topic {name}"
                for name in sorted(set(names) & set(admin.list_topics(timeout=REQUEST_TIMEOUT_S).topics))
            ]
        )


def _named(futures: Mapping[Any, Future[Any]], what: str) -> None:
    """Wait for every future; a failure names the object it was for."""
    failures = []
    for key, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            failures.append(
                f"{what} {getattr(key, 'name', None) or getattr(key, 'topic', key)}: {exc.args[0].str()}"
            )
    if failures:
        raise KafkaException("; ".join(failures))


# --- SCRAM users -----------------------------------------------------------------------------


def read_scram_users(admin: AdminClient) -> dict[str, set[str]]:
    """Every SCRAM user on the cluster with its mechanisms (SCRAM-SHA-256, SCRAM-SHA-512)."""
    try:
        described = admin.describe_user_scram_credentials(request_timeout=REQUEST_TIMEOUT_S).result()
    except KafkaException as exc:
        code = exc.args[0].code()
        if code in (KafkaError._UNSUPPORTED_FEATURE, KafkaError.UNSUPPORTED_VERSION):
            raise Unsupported(scram_unsupported(exc.args[0].str())) from None
        raise
    return {
        name: {info.mechanism.name.replace("_", "-") for info in description.scram_credential_infos}
        for name, description in described.items()
        if description is not None and description.scram_credential_infos
    }


def scram_unsupported(detail: str) -> str:
    return (
        "the cluster does not support the Admin API's SCRAM calls (DescribeUserScramCredentials, "
        f"AlterUserScramCredentials: {detail}); Redpanda 25.1 and older do not. Create the services' "
        "users with the cluster's own tool, or use a cluster that supports KIP-554 (Apache Kafka 2.7+)"
    )


@dataclass(frozen=True)
class ScramCredential:
    mechanisms: tuple[str, ...]
    password: str = field(repr=False)


def upsert_scram_users(admin: AdminClient, users: Mapping[str, ScramCredential]) -> None:
    """Give each user this password for each of its mechanisms, and wait until they all exist."""
    # One request per mechanism: a request may alter each user's credentials only once.
    for mechanism in sorted({m for credential in users.values() for m in credential.mechanisms}):
        upserts = [
            UserScramCredentialUpsertion(
                name,
                ScramCredentialInfo(MECHANISMS[mechanism], SCRAM_ITERATIONS),
                credential.password.encode(),
            )
            for name, credential in sorted(users.items())
            if mechanism in credential.mechanisms
        ]
        for batch in batches(upserts):
            _named(admin.alter_user_scram_credentials(batch, request_timeout=REQUEST_TIMEOUT_S), "SCRAM user")
    if users:
        until_visible(
            lambda: [
                f"SCRAM user {name}"
                for name, have in [(name, read_scram_users(admin).get(name, set())) for name in sorted(users)]
                if not set(users[name].mechanisms) <= have
            ]
        )


def delete_scram_users(admin: AdminClient, names: Iterable[str]) -> None:
    """Delete every mechanism of these users (those already gone are fine)."""
    wanted = set(names)
    live = {name: mechanisms for name, mechanisms in read_scram_users(admin).items() if name in wanted}
    for mechanism in sorted({m for mechanisms in live.values() for m in mechanisms}):
        deletions = [
            UserScramCredentialDeletion(name, MECHANISMS[mechanism])
            for name, mechanisms in sorted(live.items())
            if mechanism in mechanisms
        ]
        for batch in batches(deletions):
            _named(admin.alter_user_scram_credentials(batch, request_timeout=REQUEST_TIMEOUT_S), "SCRAM user")
    if live:
        until_visible(
            lambda: [
                f"the deletion of SCRAM user {name}"
                for name in sorted(set(read_scram_users(admin)) & set(live))
            ]
        )


# --- grants (ACL bindings) -------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Grant:
    """One ACL binding, named as the plan names it (`TOPIC`, `READ`, `LITERAL`, `ALLOW`)."""

    principal: str  # "User:<name>"
    operation: str
    resource_type: str
    resource_name: str
    pattern_type: str = "LITERAL"
    host: str = "*"
    permission: str = "ALLOW"

    @property
    def text(self) -> str:
        """``User:aura360.dev.api WRITE TOPIC aura360.user.events`` (a trailing * for PREFIXED);
        how a grant reads in a preview, a state and a message."""
        star = "*" if self.pattern_type == "PREFIXED" else ""
        text = f"{self.principal} {self.operation} {self.resource_type} {self.resource_name}{star}"
        if self.permission != "ALLOW" or self.host != "*":
            text = f"{self.permission} {text}" + ("" if self.host == "*" else f" from {self.host}")
        return text

    @classmethod
    def from_text(cls, text: str) -> Grant:
        """The inverse of ``text`` for an ALLOW grant from any host (all a plan ever writes)."""
        principal, operation, resource_type, name = text.split(" ", 3)
        pattern = "PREFIXED" if name.endswith("*") and resource_type != "CLUSTER" else "LITERAL"
        return cls(
            principal,
            operation,
            resource_type,
            name.removesuffix("*") if pattern == "PREFIXED" else name,
            pattern,
        )

    @classmethod
    def from_binding(cls, binding: AclBinding) -> Grant:
        return cls(
            principal=str(binding.principal),
            operation=binding.operation.name,
            resource_type=_RESOURCE_TYPE_NAMES.get(binding.restype, binding.restype.name),
            resource_name=str(binding.name),
            pattern_type=binding.resource_pattern_type.name,
            host=str(binding.host),
            permission=binding.permission_type.name,
        )

    def binding(self) -> AclBinding:
        return AclBinding(
            RESOURCE_TYPES.get(self.resource_type) or ResourceType[self.resource_type],
            self.resource_name,
            ResourcePatternType[self.pattern_type],
            self.principal,
            self.host,
            AclOperation[self.operation],
            AclPermissionType[self.permission],
        )

    def filter(self) -> AclBindingFilter:
        """The filter that matches exactly this binding (to delete it)."""
        binding = self.binding()
        return AclBindingFilter(
            binding.restype,
            binding.name,
            binding.resource_pattern_type,
            binding.principal,
            binding.host,
            binding.operation,
            binding.permission_type,
        )


def read_grants(admin: AdminClient, principals: Iterable[str] | None = None) -> set[Grant]:
    """Every binding on the cluster, or those of these principals (`User:<name>`)."""
    if principals is None:
        return {
            Grant.from_binding(b)
            for b in admin.describe_acls(EVERY_ACL, request_timeout=REQUEST_TIMEOUT_S).result()
        }
    found: set[Grant] = set()
    for principal in sorted(set(principals)):
        query = AclBindingFilter(
            ResourceType.ANY,
            None,
            ResourcePatternType.ANY,
            principal,
            None,
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        found |= {
            Grant.from_binding(b)
            for b in admin.describe_acls(query, request_timeout=REQUEST_TIMEOUT_S).result()
        }
    return found


def create_grants(admin: AdminClient, grants: Iterable[Grant]) -> None:
    """Create these bindings (in requests the controller accepts) and wait until brokers see them."""
    wanted = sorted(set(grants))
    for batch in batches(wanted):
        bindings = {grant: grant.binding() for grant in batch}
        futures = admin.create_acls(list(bindings.values()), request_timeout=REQUEST_TIMEOUT_S)
        failures = []
        for grant, binding in bindings.items():
            try:
                futures[binding].result()
            except KafkaException as exc:
                failures.append(f"grant {grant.text}: {exc.args[0].str()}")
        if failures:
            raise KafkaException("; ".join(failures))
    if wanted:
        principals = {grant.principal for grant in wanted}
        until_visible(
            lambda: [f"grant {g.text}" for g in sorted(set(wanted) - read_grants(admin, principals))]
        )


def delete_grants(admin: AdminClient, grants: Iterable[Grant]) -> None:
    """Delete exactly these bindings (those already gone are fine) and wait until they are gone."""
    unwanted = sorted(set(grants))
    for batch in batches(unwanted):
        _named(
            admin.delete_acls([grant.filter() for grant in batch], request_timeout=REQUEST_TIMEOUT_S), "grant"
        )
    if unwanted:
        principals = {grant.principal for grant in unwanted}
        until_visible(
            lambda: [
                f"the removal of grant {g.text}"
                for g in sorted(set(unwanted) & read_grants(admin, principals))
            ]
        )


# --- positions (offsets) ---------------------------------------------------------------------

# librdkafka's OFFSET_INVALID: a group that never committed for a partition.
NO_COMMITTED_OFFSET = -1001
# A group's coordinator that cannot answer yet (loading after a start, moving): ask again.
COORDINATOR_BUSY = (
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
)


def end_offsets(admin: AdminClient, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the next offset to be written, for those of ``topics`` that exist."""
    return _offsets(admin, topics, OffsetSpec.latest())


def _offsets(admin: AdminClient, topics: Iterable[str], spec: OffsetSpec) -> dict[tuple[str, int], int]:
    metadata = admin.list_topics(timeout=REQUEST_TIMEOUT_S).topics
    requests = {
        TopicPartition(name, partition): spec
        for name in sorted(set(topics))
        if name in metadata
        for partition in sorted(metadata[name].partitions)
    }
    if not requests:
        return {}
    answers = results(admin.list_offsets(requests, request_timeout=REQUEST_TIMEOUT_S))
    return {(partition.topic, partition.partition): info.offset for partition, info in answers.items()}


def first_committed_record_times(
    reader: confluent_kafka.Consumer, positions: Mapping[tuple[str, int], int], within: float
) -> dict[tuple[str, int], int | None]:
    """(topic, partition) -> the timestamp (ms) of the first committed record at or after the
    offset there, or None when the partition ends before one: what lies between is only
    transaction markers and aborted records, which offsets count and no reader ever sees.
    ``reader``: read_committed with partition-end events (Broker.reader(committed_to_end=True)),
    closed here. Partitions not read within ``within`` seconds are left out."""
    found: dict[tuple[str, int], int | None] = {}
    try:
        if not positions:
            return found
        reader.assign([TopicPartition(topic, p, offset) for (topic, p), offset in sorted(positions.items())])
        deadline = time.monotonic() + within
        while len(found) < len(positions) and time.monotonic() < deadline:
            message = reader.poll(0.5)
            if message is None:
                continue
            key = (str(message.topic()), int(message.partition() or 0))
            if key in found or key not in positions:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    found[key] = None
                    reader.incremental_unassign([TopicPartition(*key)])
                continue
            if message.offset() >= positions[key]:  # retention may have removed the one at it
                found[key] = message.timestamp()[1]
                reader.incremental_unassign([TopicPartition(*key)])
    finally:
        reader.close()
    return found


def committed_offsets(
    admin: AdminClient, groups: Iterable[str], within: float = REQUEST_TIMEOUT_S
) -> dict[tuple[str, str, int], int]:
    """(group, topic, partition) -> the group's committed offset, wherever it committed one. One
    request per group (the protocol takes one group per request), all in flight together, once
    every group's coordinator answers: librdkafka 2.x crashes the process when an OffsetFetch of
    the Admin API meets NOT_COORDINATOR (confluentinc/librdkafka#5040), as a coordinator that is
    still loading (a broker just started or failed over) answers."""
    wanted = sorted(set(groups))
    describe_groups(admin, wanted, within)
    futures = {
        group: admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group)], request_timeout=REQUEST_TIMEOUT_S
        )[group]
        for group in wanted
    }
    committed = {}
    for group, future in futures.items():
        for partition in future.result().topic_partitions:
            if partition.offset != NO_COMMITTED_OFFSET and partition.offset >= 0:
                committed[(group, partition.topic, partition.partition)] = partition.offset
    return committed


def describe_groups(
    admin: AdminClient, groups: Sequence[str], within: float = REQUEST_TIMEOUT_S
) -> dict[str, Any]:
    """Each group's description (None: a group the cluster does not know), asked again while its
    coordinator is loading or moving, until ``within`` seconds."""
    found: dict[str, Any] = {}
    left = list(groups)
    deadline = time.monotonic() + within
    while left:
        futures = admin.describe_consumer_groups(left, request_timeout=REQUEST_TIMEOUT_S)
        left = []
        for group, future in futures.items():
            try:
                found[group] = future.result()
            except KafkaException as exc:
                code = exc.args[0].code()
                if code == KafkaError.GROUP_ID_NOT_FOUND:  # Kafka 4 for a group it does not know
                    found[group] = None
                elif code in COORDINATOR_BUSY and time.monotonic() < deadline:
                    left.append(group)
                else:
                    raise
        if left:
            time.sleep(0.5)
    return found


def active_groups(admin: AdminClient, groups: Iterable[str]) -> set[str]:
    """Those of ``groups`` that have a member now."""
    described = describe_groups(admin, sorted(set(groups)))
    return {
        group for group, description in described.items() if description is not None and description.members
    }
