"""The Pulumi dynamic providers behind `Topics` and `ServiceAccess` (infra/program/kafka_admin.py):
each resource is a group of Kafka objects, applied with one batched Admin API call per kind.

They run in the engine's `pulumi-resource-pulumi-python` plugin process, which unpickles the
provider classes by reference (this module, from the project's virtualenv). The classes hold no
state, so the serialized provider never changes and never shows as a diff. The reference is kept
in every deployed stack's state and a `delete` or `read` loads the provider from there: this
module's path and the class names are part of the state's format. Moving them needs an alias
left behind.

Safety lives here as well as in the program's preflight, because a topic is no longer a Pulumi
resource of its own:
- nothing is ever replaced (`diff` never asks for it), and no topic the inputs still hold is
  ever deleted;
- a topic dropped from a protected stack's inputs is refused unless the settings allow its
  removal, and then it is released, not deleted (as `retain_on_delete` did);
- a partition decrease or a replication change is refused before anything changes;
- `create` converges: a topic that already exists exactly as planned (left by an interrupted
  `up`) is taken over as it is; one that differs only if the settings adopt it or the stack
  owned it before.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from typing import Any

from confluent_kafka import KafkaError, KafkaException
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
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from infra.live.apply_plan import MECHANISMS, OPERATIONS, PATTERNS, RESOURCE_TYPES, SCRAM_ITERATIONS, matching

REQUEST_TIMEOUT_S = 60
VISIBLE_WITHIN_S = 60
# The engine's placeholder for a value not known until deployment (pulumi.runtime.rpc.UNKNOWN).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
_RESOURCE_TYPE_NAMES = {value: key for key, value in RESOURCE_TYPES.items()}
_OPERATION_NAMES = {value: key for key, value in OPERATIONS.items()}


class Refused(Exception):
    """A change this provider will not make; raised before it changes anything."""


# --- the admin connection --------------------------------------------------------------------

_clients: dict[str, AdminClient] = {}
_clients_lock = threading.Lock()


def admin_client(props: Mapping[str, Any]) -> AdminClient:
    """One AdminClient per connection and process: the engine calls in parallel, and a login per
    call would cost more than the batch it sends."""
    connection = props["connection"]
    password = str(props["admin_password"])
    key = json.dumps([connection, password], sort_keys=True)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            config = {
                "bootstrap.servers": ",".join(connection["bootstrap_servers"]),
                "security.protocol": connection["security_protocol"],
                "sasl.mechanism": connection["sasl_mechanism"],
                "sasl.username": connection["username"],
                "sasl.password": password,
                "log_level": 3,
            }
            if connection.get("ca_cert"):
                config["ssl.ca.pem"] = connection["ca_cert"]
            if connection.get("skip_tls_verify"):
                config["enable.ssl.certificate.verification"] = "false"
            client = _clients[key] = AdminClient(config)
        return client


def _results(futures: Mapping[Any, Future[Any]]) -> dict[Any, Any]:
    return {key: future.result() for key, future in futures.items()}


def _eventually(check: Any, what: str) -> None:
    """Brokers learn of a change from the metadata log a moment after the controller commits it."""
    deadline = time.monotonic() + VISIBLE_WITHIN_S
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not visible on the cluster after {VISIBLE_WITHIN_S} s")
        time.sleep(0.2)


def _unknown(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_unknown(item) for item in value.values())
    if isinstance(value, list):
        return any(_unknown(item) for item in value)
    return bool(value == UNKNOWN)


def _changed(olds: Mapping[str, Any], news: Mapping[str, Any], keys: Iterable[str]) -> bool:
    return any(_unknown(news.get(key)) or olds.get(key) != news.get(key) for key in keys)


# --- topics ----------------------------------------------------------------------------------

TopicSpec = dict[str, Any]  # {"partitions": int, "replication_factor": int, "config": {key: value}}


def _normalized(key: str, value: str) -> str:
    return ",".join(sorted(value.split(","))) if key == "cleanup.policy" else value


def read_topics(admin: AdminClient, planned: Mapping[str, TopicSpec]) -> dict[str, TopicSpec]:
    """The live partitions, replication and planned config keys of those planned topics that
    exist. A config equal to the plan (after normalizing) reads back as the plan's own string."""
    metadata = admin.list_topics(timeout=REQUEST_TIMEOUT_S).topics
    names = sorted(name for name in planned if name in metadata)
    if not names:
        return {}
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
    configs = _results(admin.describe_configs(resources, request_timeout=REQUEST_TIMEOUT_S))
    live: dict[str, TopicSpec] = {}
    for resource, entries in configs.items():
        name = resource.name
        partitions = metadata[name].partitions
        wanted = planned[name]["config"]
        config = {}
        for key, value in wanted.items():
            entry = entries.get(key)
            actual = entry.value if entry is not None and entry.value is not None else "(unset)"
            config[key] = value if _normalized(key, actual) == _normalized(key, value) else actual
        live[name] = {
            "partitions": len(partitions),
            "replication_factor": len(partitions[0].replicas) if partitions else 0,
            "config": config,
        }
    return live


def _topic_problems(name: str, planned: TopicSpec, live: TopicSpec) -> list[str]:
    problems = []
    if live["partitions"] > planned["partitions"]:
        problems.append(
            f"topic {name} has {live['partitions']} partitions and would shrink to "
            f"{planned['partitions']}: Kafka cannot remove partitions"
        )
    if live["replication_factor"] != planned["replication_factor"]:
        problems.append(
            f"topic {name} has replication factor {live['replication_factor']}, planned "
            f"{planned['replication_factor']}: change it with a partition reassignment, not here"
        )
    return problems


def converge_topics(
    admin: AdminClient,
    planned: Mapping[str, TopicSpec],
    *,
    owned: Iterable[str],
    dropped_configs: Mapping[str, Iterable[str]] | None = None,
) -> None:
    """Create what is missing, grow partitions, set configs. An existing topic that differs from
    the plan is changed only if it is in ``owned``; every refusal comes before any change."""
    owned = set(owned)
    live = read_topics(admin, planned)
    problems: list[str] = []
    for name, spec in sorted(planned.items()):
        if name not in live:
            continue
        problems += _topic_problems(name, spec, live[name])
        if name not in owned and live[name] != spec:
            problems.append(
                f"topic {name} already exists on the cluster and differs from the plan "
                f"({_differences(spec, live[name])}); adopt it on purpose: list it in "
                "settings.adopt.topics (`kafka-platform import` writes the list)"
            )
    if problems:
        raise Refused("; ".join(problems))

    missing = [
        NewTopic(name, int(spec["partitions"]), int(spec["replication_factor"]), config=dict(spec["config"]))
        for name, spec in sorted(planned.items())
        if name not in live
    ]
    if missing:
        _created(admin.create_topics(missing, request_timeout=REQUEST_TIMEOUT_S))
    grow = [
        NewPartitions(name, int(spec["partitions"]))
        for name, spec in sorted(planned.items())
        if name in live and live[name]["partitions"] < spec["partitions"]
    ]
    if grow:
        _results(admin.create_partitions(grow, request_timeout=REQUEST_TIMEOUT_S))
    alter = []
    for name, spec in sorted(planned.items()):
        entries = [
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
            for key, value in sorted(spec["config"].items())
            if name in live and live[name]["config"].get(key) != value
        ]
        entries += [
            ConfigEntry(key, None, incremental_operation=AlterConfigOpType.DELETE)
            for key in sorted((dropped_configs or {}).get(name, ()))
            if key not in spec["config"]
        ]
        if entries:
            alter.append(ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=entries))
    if alter:
        _results(admin.incremental_alter_configs(alter, request_timeout=REQUEST_TIMEOUT_S))
    if missing or grow or alter:
        _eventually(lambda: read_topics(admin, planned) == dict(planned), "the planned topics")


def _created(futures: Mapping[str, Future[None]]) -> None:
    """A topic that appeared between the read and the create (another run) is not an error."""
    for future in futures.values():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


def _differences(planned: TopicSpec, live: TopicSpec) -> str:
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


def delete_topics(admin: AdminClient, names: Iterable[str]) -> None:
    names = sorted(names)
    if not names:
        return
    for future in admin.delete_topics(names, request_timeout=REQUEST_TIMEOUT_S).values():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
    # Until the deletion has reached every broker, a topic of the same name cannot be created.
    _eventually(
        lambda: not set(names) & set(admin.list_topics(timeout=REQUEST_TIMEOUT_S).topics),
        "the deletion of " + ", ".join(names),
    )


class TopicsProvider(ResourceProvider):
    """A group of topics (one resource per family: the first segment of the topic's key)."""

    serialize_as_secret_always = False
    COMPARED = ("topics", "connection", "admin_password", "removal")

    def create(self, props: dict[str, Any]) -> CreateResult:
        admin = admin_client(props)
        converge_topics(admin, props["topics"], owned=props.get("adopt") or ())
        return CreateResult(id_=props["family"], outs=_outputs(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # `adopt` and `allowed_removals` say what may happen, not what the cluster should hold.
        return DiffResult(
            changes=_changed(olds, news, self.COMPARED), replaces=[], delete_before_replace=False
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        admin = admin_client(news)
        planned: dict[str, TopicSpec] = news["topics"]
        removed = sorted(set(olds["topics"]) - set(planned))
        keep = news["removal"] == "keep"
        if keep:
            refused = [name for name in removed if name not in (news.get("allowed_removals") or ())]
            if refused:
                raise Refused(
                    f"this stack is protected: {', '.join(refused)} would leave it; add them to "
                    "settings.protection.allow_deletes.topics to retire them on purpose"
                )
        dropped = {
            name: set(olds["topics"][name]["config"]) - set(spec["config"])
            for name, spec in planned.items()
            if name in olds["topics"]
        }
        # Everything in the old state belonged to this stack: it converges without an adopt list.
        converge_topics(admin, planned, owned=set(olds["topics"]) | set(planned), dropped_configs=dropped)
        if not keep:
            delete_topics(admin, removed)
        return UpdateResult(outs=_outputs(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        delete_topics(admin_client(props), props["topics"])

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        live = read_topics(admin_client(props), props["topics"])
        return ReadResult(id_=id_, outs={**props, "topics": live})


def _outputs(props: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in props.items() if key != "__provider"}


# --- a service's access: SCRAM users and ACLs -------------------------------------------------


def acl_text(
    principal: str, operation: str, resource_type: str, resource_name: str, pattern_type: str
) -> str:
    """How one ALLOW binding (host *) reads in the state and the preview:
    ``User:aura360.dev.api WRITE TOPIC aura360.user.events`` (a trailing * for PREFIXED)."""
    star = "*" if pattern_type == "PREFIXED" else ""
    return f"{principal} {operation} {resource_type} {resource_name}{star}"


def _binding(text: str) -> AclBinding:
    principal, operation, resource_type, name = text.split(" ", 3)
    pattern = "PREFIXED" if name.endswith("*") else "LITERAL"
    return AclBinding(
        RESOURCE_TYPES[resource_type],
        name.removesuffix("*"),
        PATTERNS[pattern],
        principal,
        "*",
        OPERATIONS[operation],
        AclPermissionType.ALLOW,
    )


def read_acls(admin: AdminClient, principals: Iterable[str]) -> list[str]:
    """Every ALLOW binding for any host of these principals, as `acl_text` (a DENY or a binding
    for one host is never planned: it is not this provider's to read or remove)."""
    found: set[str] = set()
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
        for binding in admin.describe_acls(query, request_timeout=REQUEST_TIMEOUT_S).result():
            if binding.permission_type == AclPermissionType.ALLOW and binding.host == "*":
                found.add(
                    acl_text(
                        binding.principal,
                        _OPERATION_NAMES[binding.operation],
                        _RESOURCE_TYPE_NAMES[binding.restype],
                        binding.name,
                        binding.resource_pattern_type.name,
                    )
                )
    return sorted(found)


def read_users(admin: AdminClient, users: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """The SCRAM mechanisms each of these users has on the cluster (missing users left out)."""
    if not users:
        return {}
    described = admin.describe_user_scram_credentials(request_timeout=REQUEST_TIMEOUT_S).result()
    live: dict[str, list[str]] = {}
    for name in users:
        description = described.get(name)
        if description is not None and description.scram_credential_infos:
            live[name] = sorted(
                info.mechanism.name.replace("_", "-") for info in description.scram_credential_infos
            )
    return live


def upsert_users(admin: AdminClient, users: Mapping[str, list[str]], passwords: Mapping[str, str]) -> None:
    # One request per mechanism: a request may alter each user's credentials only once.
    mechanisms = sorted({mechanism for wanted in users.values() for mechanism in wanted})
    for mechanism in mechanisms:
        upserts = [
            UserScramCredentialUpsertion(
                name,
                ScramCredentialInfo(MECHANISMS[mechanism], SCRAM_ITERATIONS),
                str(passwords[name]).encode(),
            )
            for name, wanted in sorted(users.items())
            if mechanism in wanted
        ]
        _results(admin.alter_user_scram_credentials(upserts, request_timeout=REQUEST_TIMEOUT_S))
    if users:
        _eventually(
            lambda: all(set(read_users(admin, users).get(name, ())) >= set(m) for name, m in users.items()),
            "the SCRAM users",
        )


def delete_users(admin: AdminClient, users: Mapping[str, list[str]]) -> None:
    live = read_users(admin, users)
    for mechanism in sorted({m for wanted in live.values() for m in wanted}):
        deletions = [
            UserScramCredentialDeletion(name, MECHANISMS[mechanism])
            for name, wanted in sorted(live.items())
            if mechanism in wanted
        ]
        _results(admin.alter_user_scram_credentials(deletions, request_timeout=REQUEST_TIMEOUT_S))
    if live:
        _eventually(lambda: not read_users(admin, live), "the deletion of the SCRAM users")


def converge_acls(
    admin: AdminClient, principals: Iterable[str], wanted: Iterable[str], unwanted: Iterable[str] = ()
) -> None:
    """Create the wanted bindings that are missing and remove the unwanted ones that exist."""
    principals, wanted = sorted(set(principals)), set(wanted)
    live = set(read_acls(admin, principals))
    missing = sorted(wanted - live)
    extra = sorted((set(unwanted) - wanted) & live)
    if missing:
        _results(admin.create_acls([_binding(text) for text in missing], request_timeout=REQUEST_TIMEOUT_S))
    if extra:
        filters = [matching(_binding(text)) for text in extra]
        _results(admin.delete_acls(filters, request_timeout=REQUEST_TIMEOUT_S))
    if missing or extra:
        _eventually(
            lambda: wanted <= (now := set(read_acls(admin, principals))) and not now & set(extra),
            "the planned ACLs",
        )


class ServiceAccessProvider(ResourceProvider):
    """One service's SCRAM users (every credential generation still valid) and ACLs."""

    serialize_as_secret_always = False
    COMPARED = ("acls", "users", "passwords", "principals", "connection", "admin_password")

    def create(self, props: dict[str, Any]) -> CreateResult:
        admin = admin_client(props)
        upsert_users(admin, props["users"], props["passwords"])
        converge_acls(admin, props["principals"], props["acls"])
        return CreateResult(id_=props["service"], outs=_outputs(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(
            changes=_changed(olds, news, self.COMPARED), replaces=[], delete_before_replace=False
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        admin = admin_client(news)
        users, passwords = news["users"], news["passwords"]
        changed = {
            name: mechanisms
            for name, mechanisms in users.items()
            if olds["users"].get(name) != mechanisms
            or (olds.get("passwords") or {}).get(name) != passwords[name]
        }
        upsert_users(admin, changed, passwords)
        principals = set(olds["principals"]) | set(news["principals"])
        converge_acls(admin, principals, news["acls"], unwanted=olds["acls"])
        gone = {name: mechanisms for name, mechanisms in olds["users"].items() if name not in users}
        delete_users(admin, gone)
        return UpdateResult(outs=_outputs(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        admin = admin_client(props)
        converge_acls(admin, props["principals"], (), unwanted=props["acls"])
        delete_users(admin, props["users"])

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        admin = admin_client(props)
        users = read_users(admin, props["users"])
        # A password cannot be read back: a user that still exists keeps the one in the state.
        passwords = {name: value for name, value in (props.get("passwords") or {}).items() if name in users}
        acls = dict.fromkeys(read_acls(admin, props["principals"]), "ALLOW")
        return ReadResult(id_=id_, outs={**props, "users": users, "passwords": passwords, "acls": acls})
