"""The Pulumi dynamic providers behind `Topics` and `ServiceAccess` (infra/program/kafka_admin.py):
each resource is a group of Kafka objects, applied through the one Kafka-admin core
(`infra.live.cluster_admin`) with batched Admin API calls.

They run in the engine's `pulumi-resource-pulumi-python` plugin process, which unpickles the
provider classes by reference (this module, from the project's virtualenv). The reference is kept
in every deployed stack's state and a `delete` or `read` loads the provider from there: this
module's path and the class names are part of the state's format. Moving them needs an alias
left behind.

The admin password of an existing cluster is read from the stack's configuration
(`configure`, pulumi/pulumi#17673), never from the state: a rotated password works for every
`read`, `update` and `delete`, also of a resource the program no longer registers.

What the stack owns is what its state says it deployed, plus what `settings.adopt` names; the
providers never change, take over or delete anything else:
- a topic or SCRAM user that exists on the cluster and is not owned is refused, naming it, before
  anything changes. Exceptions that can lose nothing: a topic exactly as planned that never held
  a record, and a user that logs in with the stack's own password (both what an interrupted run
  of this stack leaves behind);
- a grant the plan does not have is never read into the state, created or deleted (`drift`
  reports it);
- `create` and `update` undo what they created when they fail half-way;
- nothing is ever replaced, no planned topic is ever deleted, and a topic dropped from a
  protected stack is released, not deleted, and only if the settings allow its removal;
- a partition decrease or a replication change is refused before anything changes;
- a stack moved to another cluster (another cluster id behind the bootstrap servers) is
  deployed there in full, and the cluster it left is not touched.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi.dynamic import (
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from infra.live.cluster_admin import (
    AdminLogin,
    ClusterUnreachable,
    Grant,
    PartlyApplied,
    Refused,
    ScramCredential,
    TopicSpec,
    alter_topic_configs,
    can_log_in,
    connect,
    create_grants,
    create_topics,
    delete_grants,
    delete_scram_users,
    delete_topics,
    grow_partitions,
    read_grants,
    read_scram_users,
    read_topics,
    topic_refusals,
    topics_with_records,
    upsert_scram_users,
    wait_for_topics,
)
from infra.program.dynamic_inputs import changed

# A cluster that did not answer is not asked again by every resource of the same run.
UNREACHABLE_REMEMBERED_S = 30

__all__ = ["Refused", "ServiceAccessProvider", "TopicsProvider"]


# --- the admin connection --------------------------------------------------------------------

_sessions: dict[str, tuple[Any, str]] = {}
_unreachable: dict[str, tuple[float, str]] = {}
_sessions_lock = threading.Lock()


def admin_login(props: Mapping[str, Any], config: Any | None) -> AdminLogin:
    """The admin login from a resource's inputs and, for the password, the stack's config when
    the inputs name a config key (existing clusters), else the inputs (MSK's generated admin)."""
    connection = props["connection"]
    key = props.get("admin_password_config")

    password = config.get(key) if key and config is not None else None
    if password is None:
        password = props.get("admin_password")
    if password is None:
        raise Refused(f"no admin password: set it with `pulumi config set --secret {key} <password>`")
    return AdminLogin(
        bootstrap_servers=tuple(connection["bootstrap_servers"]),
        security_protocol=connection["security_protocol"],
        sasl_mechanism=connection["sasl_mechanism"],
        username=connection["username"],
        password=str(password),
        ca_cert=connection.get("ca_cert"),
        skip_tls_verify=bool(connection.get("skip_tls_verify")),
    )


def session(login: AdminLogin) -> tuple[Any, str]:
    """One AdminClient per login and process, and the cluster's id: the engine calls in
    parallel, and a login per call would cost more than the batch it sends."""
    key = json.dumps(dataclasses.astuple(login))
    with _sessions_lock:
        if key in _sessions:
            return _sessions[key]
        failed = _unreachable.get(key)
        if failed is not None and time.monotonic() - failed[0] < UNREACHABLE_REMEMBERED_S:
            raise ClusterUnreachable(failed[1])
        try:
            _sessions[key] = connect(login)
        except ClusterUnreachable as exc:
            message = str(exc)
            if "failed:" in message and "login" in message:
                # The engine configures a refresh from the last deployment, not the stack's config.
                message += (
                    "; if the admin password changed since the last `pulumi up`, refresh with "
                    "`--run-program` (a plain refresh logs in as the last deployment did)"
                )
            _unreachable[key] = (time.monotonic(), message)
            raise ClusterUnreachable(message) from None
        return _sessions[key]


def _same_cluster(olds: Mapping[str, Any], cluster_id: str) -> bool:
    """Whether the state's objects live on this cluster (states written before the cluster id
    was recorded count as the same)."""
    return olds.get("cluster_id") in (None, cluster_id)


def _outputs(props: Mapping[str, Any], cluster_id: str) -> dict[str, Any]:
    outs = {key: value for key, value in props.items() if key != "__provider"}
    outs["cluster_id"] = cluster_id
    return outs


class _AdminProvider(ResourceProvider):
    serialize_as_secret_always = False
    _config: Any = None

    def configure(self, req: ConfigureRequest) -> None:
        self._config = req.config

    def _session(self, props: Mapping[str, Any]) -> tuple[Any, str, AdminLogin]:
        login = admin_login(props, self._config)
        admin, cluster_id = session(login)
        return admin, cluster_id, login

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(
            changes=changed(olds, news, self.COMPARED), replaces=[], delete_before_replace=False
        )

    COMPARED: tuple[str, ...] = ()


# --- topics ----------------------------------------------------------------------------------


def converge_topics(
    admin: Any,
    planned: Mapping[str, TopicSpec],
    *,
    owned: Iterable[str],
    dropped_configs: Mapping[str, Iterable[str]] | None = None,
) -> None:
    """Create what is missing, grow partitions, set configs: every refusal before any change,
    and the topics created here deleted again if a later step fails."""
    owned = set(owned)
    live = read_topics(admin, planned)
    unowned = [name for name in live if name not in owned]
    problems = topic_refusals(
        planned, live, owned=owned, with_records=topics_with_records(admin, unowned) if unowned else ()
    )
    if problems:
        raise Refused("; ".join(problems))
    created: list[str] = []
    grow = {
        n: s["partitions"]
        for n, s in planned.items()
        if n in live and live[n]["partitions"] < s["partitions"]
    }
    configs = {
        name: {key: value for key, value in spec["config"].items() if live[name]["config"].get(key) != value}
        for name, spec in planned.items()
        if name in live
    }
    removed = {
        name: [key for key in keys if key not in planned[name]["config"]]
        for name, keys in (dropped_configs or {}).items()
        if name in planned
    }
    try:
        try:
            created = create_topics(admin, {n: s for n, s in planned.items() if n not in live})
        except PartlyApplied as partly:
            created = partly.created
            raise
        if grow:
            grow_partitions(admin, grow)
        alter_topic_configs(admin, {n: c for n, c in configs.items() if c}, removed)
    except Exception:
        # What this call created goes again; a partition added or a config set stays (the next
        # run converges it), as neither can lose data.
        delete_topics(admin, created)
        raise
    # Not rolled back on a timeout: the topics exist, only slow to show.
    if created or grow or any(configs.values()) or any(removed.values()):
        wait_for_topics(admin, planned)


class TopicsProvider(_AdminProvider):
    """A group of topics (one resource per family: the first segment of the topic's key)."""

    # `adopt` and `allowed_removals` say what may happen, not what the cluster should hold.
    # `admin_password_config`: a state written before the password came from the config is
    # updated once, so it stops carrying (and using) the password it was created with.
    COMPARED = ("topics", "connection", "removal", "admin_password_config")

    def create(self, props: dict[str, Any]) -> CreateResult:
        admin, cluster_id, _ = self._session(props)
        converge_topics(admin, props["topics"], owned=props.get("adopt") or ())
        return CreateResult(id_=props["family"], outs=_outputs(props, cluster_id))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        admin, cluster_id, _ = self._session(news)
        planned: dict[str, TopicSpec] = news["topics"]
        # What the state holds belongs to this stack, on the cluster the state was written for.
        mine = olds["topics"] if _same_cluster(olds, cluster_id) else {}
        removed = sorted(set(mine) - set(planned))
        keep = news["removal"] == "keep"
        if keep:
            refused = [name for name in removed if name not in (news.get("allowed_removals") or ())]
            if refused:
                raise Refused(
                    f"this stack is protected: topics {', '.join(refused)} would leave it; add them to "
                    "settings.protection.allow_deletes.topics to retire them on purpose"
                )
        dropped = {
            name: set(mine[name]["config"]) - set(spec["config"])
            for name, spec in planned.items()
            if name in mine
        }
        converge_topics(
            admin, planned, owned=set(mine) | set(news.get("adopt") or ()), dropped_configs=dropped
        )
        if not keep:
            delete_topics(admin, removed)
        return UpdateResult(outs=_outputs(news, cluster_id))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        admin, cluster_id, _ = self._session(props)
        if _same_cluster(props, cluster_id):
            delete_topics(admin, props["topics"])

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        admin, cluster_id, _ = self._session(props)
        live = read_topics(admin, props["topics"]) if _same_cluster(props, cluster_id) else {}
        return ReadResult(id_=id_, outs={**props, "topics": live, "cluster_id": cluster_id})


# --- a service's access: SCRAM users and grants -----------------------------------------------


def _grants(texts: Iterable[str]) -> set[Grant]:
    return {Grant.from_text(text) for text in texts}


def _foreign_users(
    login: AdminLogin,
    live: Mapping[str, set[str]],
    users: Mapping[str, list[str]],
    passwords: Mapping[str, str],
) -> list[str]:
    """Those of ``users`` that exist on the cluster and are not this stack's: they do not log in
    with the stack's password (a user an interrupted run of this stack made does)."""
    foreign = []
    for name, mechanisms in sorted(users.items()):
        if name not in live:
            continue
        mechanism = mechanisms[0]
        if mechanism not in live[name] or not can_log_in(
            login.with_user(name, str(passwords[name]), mechanism)
        ):
            foreign.append(name)
    return foreign


class ServiceAccessProvider(_AdminProvider):
    """One service's SCRAM users (every credential generation still valid) and grants."""

    COMPARED = ("acls", "users", "passwords", "principals", "connection", "admin_password_config")

    def create(self, props: dict[str, Any]) -> CreateResult:
        admin, cluster_id, login = self._session(props)
        self._converge(admin, login, props, mine_users={}, mine_grants=set())
        return CreateResult(id_=props["service"], outs=_outputs(props, cluster_id))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        admin, cluster_id, login = self._session(news)
        if _same_cluster(olds, cluster_id):
            mine = _grants(olds["acls"])
            if "cluster_id" not in olds:
                # Written by a release whose refresh read hand-made grants into the state: only
                # what is still planned is surely the stack's (`drift` reports the rest).
                mine &= _grants(news["acls"])
            self._converge(
                admin,
                login,
                news,
                mine_users=olds["users"],
                mine_grants=mine,
                old_passwords=olds.get("passwords") or {},
            )
        else:
            self._converge(admin, login, news, mine_users={}, mine_grants=set())
        return UpdateResult(outs=_outputs(news, cluster_id))

    def _converge(
        self,
        admin: Any,
        login: AdminLogin,
        props: Mapping[str, Any],
        *,
        mine_users: Mapping[str, list[str]],
        mine_grants: set[Grant],
        old_passwords: Mapping[str, str] | None = None,
    ) -> None:
        users: dict[str, list[str]] = props["users"]
        passwords: dict[str, str] = props.get("passwords") or {}
        live_users = read_scram_users(admin) if users or mine_users else {}
        adopted = set(props.get("adopt_users") or ())
        candidates = {n: m for n, m in users.items() if n not in mine_users and n not in adopted}
        foreign = _foreign_users(login, live_users, candidates, passwords)
        if foreign:
            raise Refused(
                f"SCRAM user {', '.join(foreign)} already exists on the cluster and is not this stack's "
                f"(service {props['service']}); nothing was changed. Adopt it on purpose (settings.adopt."
                "users; `kafka-platform import` writes the list) and its password is reset to the stack's"
            )
        wanted = _grants(props["acls"])
        principals = set(props["principals"]) | {grant.principal for grant in mine_grants}
        live_grants = read_grants(admin, principals) if principals else set()
        upserts = {
            name: ScramCredential(tuple(mechanisms), str(passwords[name]))
            for name, mechanisms in users.items()
            if not set(mechanisms) <= live_users.get(name, set())
            or mine_users.get(name) != mechanisms
            or (old_passwords or {}).get(name) != passwords[name]
        }
        new_users = [name for name in upserts if name not in live_users]
        new_grants = wanted - live_grants
        try:
            upsert_scram_users(admin, upserts)
            create_grants(admin, new_grants)
        except Exception:
            delete_grants(admin, new_grants & read_grants(admin, principals))
            delete_scram_users(admin, new_users)
            raise
        delete_grants(admin, (mine_grants - wanted) & live_grants)
        delete_scram_users(admin, [name for name in mine_users if name not in users])

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        admin, cluster_id, _ = self._session(props)
        if not _same_cluster(props, cluster_id):
            return
        mine = _grants(props["acls"])
        delete_grants(admin, mine & read_grants(admin, {grant.principal for grant in mine}))
        delete_scram_users(admin, props["users"])

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """What of the state is still on the cluster: the stack's users with the planned
        mechanisms they still have, and the stack's grants still there. Never more: a grant or
        mechanism added by hand is not this stack's (`drift` reports it)."""
        admin, cluster_id, _ = self._session(props)
        if not _same_cluster(props, cluster_id):
            return ReadResult(
                id_=id_, outs={**props, "users": {}, "passwords": {}, "acls": {}, "cluster_id": cluster_id}
            )
        live_users = read_scram_users(admin)
        users = {
            name: [m for m in mechanisms if m in live_users.get(name, set())]
            for name, mechanisms in props["users"].items()
        }
        users = {name: mechanisms for name, mechanisms in users.items() if mechanisms}
        # A password cannot be read back: a user that still exists keeps the one in the state.
        passwords = {name: value for name, value in (props.get("passwords") or {}).items() if name in users}
        mine = _grants(props["acls"])
        still = mine & read_grants(admin, {grant.principal for grant in mine}) if mine else set()
        acls = {grant.text: "ALLOW" for grant in sorted(still)}
        return ReadResult(
            id_=id_,
            outs={**props, "users": users, "passwords": passwords, "acls": acls, "cluster_id": cluster_id},
        )
