"""A stand-in for `rpk`, strict about the command surface the compose init scripts use.

The flags, their spellings and the environment it checks follow rpk's own sources
(`rpk topic create|describe|alter-config`, `rpk security user create|update`,
`rpk security acl create`, `rpk cluster config set`, `rpk registry compatibility-level set`,
`rpk registry schema create`), so a script that passes here calls rpk the way rpk expects:
Kafka-API commands need `RPK_BROKERS`, Admin-API commands `RPK_ADMIN_HOSTS`, Schema Registry
commands `RPK_REGISTRY_HOSTS` (rpk's defaults, localhost:9092, :9644 and :8081, are wrong
inside a compose service). State lives in `$FAKE_RPK_STATE`; every call is appended to its `calls` file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

# kmsg.ParseACLOperation's names, normalised as rpk does (case, '_', '-', '.' ignored).
KAFKA_ACL_OPERATIONS = {
    "all",
    "read",
    "write",
    "create",
    "delete",
    "alter",
    "describe",
    "clusteraction",
    "describeconfigs",
    "alterconfigs",
    "idempotentwrite",
}
SCRAM_MECHANISMS = {"scram-sha-256", "scram-sha-512"}
COMPATIBILITY_LEVELS = [
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
]


class RpkError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rpk", exit_on_error=False)
    groups = parser.add_subparsers(dest="group", required=True)

    topic = groups.add_parser("topic").add_subparsers(dest="command", required=True)
    describe = topic.add_parser("describe")
    describe.add_argument("topic")
    create = topic.add_parser("create")
    create.add_argument("topics", nargs="+")
    create.add_argument("-p", "--partitions", type=int, default=-1)
    create.add_argument("-r", "--replicas", type=int, default=-1)
    create.add_argument("-c", "--topic-config", action="append", default=[])
    alter = topic.add_parser("alter-config")
    alter.add_argument("topics", nargs="+")
    alter.add_argument("-s", "--set", action="append", default=[])

    security = groups.add_parser("security").add_subparsers(dest="area", required=True)
    user = security.add_parser("user").add_subparsers(dest="command", required=True)
    user_create = user.add_parser("create")
    user_create.add_argument("user")
    user_create.add_argument("-p", "--new-password", dest="password", required=True)
    user_create.add_argument("--mechanism", default="scram-sha-256")
    user_update = user.add_parser("update")
    user_update.add_argument("user")
    user_update.add_argument("--new-password", dest="password", required=True)
    user_update.add_argument("--mechanism", required=True)
    acl = security.add_parser("acl").add_subparsers(dest="command", required=True)
    acl_create = acl.add_parser("create")
    acl_create.add_argument("--allow-principal", action="append", required=True)
    acl_create.add_argument("--operation", action="append", required=True)
    acl_create.add_argument("--topic", action="append", default=[])
    acl_create.add_argument("--group", action="append", default=[])
    acl_create.add_argument("--transactional-id", action="append", default=[])
    acl_create.add_argument("--cluster", action="store_true")
    acl_create.add_argument("--resource-pattern-type", choices=["literal", "prefixed"], default="literal")

    cluster = groups.add_parser("cluster").add_subparsers(dest="area", required=True)
    config = cluster.add_parser("config").add_subparsers(dest="command", required=True)
    config_set = config.add_parser("set")
    config_set.add_argument("key")
    config_set.add_argument("value")

    registry = groups.add_parser("registry").add_subparsers(dest="area", required=True)
    level = registry.add_parser("compatibility-level").add_subparsers(dest="command", required=True)
    level_set = level.add_parser("set")
    level_set.add_argument("subjects", nargs="*")
    level_set.add_argument("--level", required=True, choices=COMPATIBILITY_LEVELS)
    schema = registry.add_parser("schema").add_subparsers(dest="command", required=True)
    schema_create = schema.add_parser("create")
    schema_create.add_argument("subject")
    schema_create.add_argument("--schema", required=True)
    schema_create.add_argument("--type", choices=["avro", "protobuf", "json"])
    return parser


def _require_env(name: str, api: str) -> None:
    if not os.environ.get(name):
        raise RpkError(f"{api} address not set ({name}); rpk would try localhost and fail")


def _key_values(pairs: list[str]) -> dict[str, str]:
    if any("=" not in pair for pair in pairs):
        raise RpkError(f"unable to parse configs {pairs}: expected key=value")
    return dict(pair.split("=", 1) for pair in pairs)


def _registry(args: argparse.Namespace, state: dict[str, Any]) -> int:
    _require_env("RPK_REGISTRY_HOSTS", "Schema Registry")
    subjects: dict[str, Any] = state.setdefault("subjects", {})
    if args.area == "compatibility-level":
        for name in args.subjects:
            subjects.setdefault(name, {"versions": []})["level"] = args.level
        return 0
    path = Path(args.schema)
    if not path.is_file():
        raise RpkError(f"unable to read {args.schema}")
    if args.type is None and path.suffix not in (".avro", ".avsc", ".proto", ".json"):
        raise RpkError("unable to detect the schema type from the file name: pass --type")
    versions = subjects.setdefault(args.subject, {"versions": []})["versions"]
    text = json.dumps(json.loads(path.read_text()), sort_keys=True)
    if text not in versions:  # the same schema again is the version the subject has
        versions.append(text)
    return 0


def run(args: argparse.Namespace, state: dict[str, Any]) -> int:
    if args.group == "registry":
        return _registry(args, state)
    kafka_api = args.group == "topic" or getattr(args, "area", None) == "acl"
    _require_env("RPK_BROKERS" if kafka_api else "RPK_ADMIN_HOSTS", "Kafka API" if kafka_api else "Admin API")
    topics: dict[str, Any] = state.setdefault("topics", {})
    if args.group == "topic":
        if args.command == "describe":
            return 0 if args.topic in topics else 1
        if args.command == "create":
            for name in args.topics:
                if name in topics:
                    raise RpkError(f"{name}: TOPIC_ALREADY_EXISTS")
                if args.replicas != -1 and args.replicas % 2 == 0:
                    raise RpkError("INVALID_REPLICATION_FACTOR: replication factor must be odd")
                topics[name] = {
                    "partitions": args.partitions,
                    "replicas": args.replicas,
                    "config": _key_values(args.topic_config),
                }
            return 0
        for name in args.topics:  # alter-config
            if name not in topics:
                raise RpkError(f"{name}: UNKNOWN_TOPIC_OR_PARTITION")
            topics[name]["config"].update(_key_values(args.set))
        return 0
    if args.group == "cluster":
        state.setdefault("cluster_config", {})[args.key] = args.value
        return 0
    if args.area == "user":
        if args.mechanism.lower() not in SCRAM_MECHANISMS:
            raise RpkError(f"unsupported mechanism {args.mechanism!r}")
        users: dict[str, str] = state.setdefault("users", {})
        exists = args.user in users
        if (args.command == "create") == exists:
            raise RpkError(f"user {args.user!r}: {'already exists' if exists else 'not found'}")
        users[args.user] = args.mechanism.upper()
        return 0
    # acl create
    operations = [op.replace("_", "").replace("-", "").replace(".", "").lower() for op in args.operation]
    if unknown := set(operations) - KAFKA_ACL_OPERATIONS:
        raise RpkError(f"invalid kafka operation {sorted(unknown)}")
    resources = [("topic", t) for t in args.topic] + [("group", g) for g in args.group]
    resources += [("transactional-id", t) for t in args.transactional_id]
    resources += [("cluster", "kafka-cluster")] if args.cluster else []
    if not resources:
        raise RpkError("at least one resource is required")
    acls = state.setdefault("acls", [])
    for principal in args.allow_principal:
        for kind, name in resources:
            for operation in operations:
                binding = [principal, kind, name, args.resource_pattern_type, operation]
                if binding not in acls:
                    acls.append(binding)
    return 0


def main(argv: list[str]) -> int:
    directory = Path(os.environ["FAKE_RPK_STATE"])
    with (directory / "calls").open("a") as calls:
        calls.write(" ".join(argv) + "\n")
    state_file = directory / "state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    try:
        args = _parser().parse_args(argv)
        code = run(args, state)
    except (argparse.ArgumentError, RpkError) as exc:
        print(f"rpk: {exc}", file=sys.stderr)
        return 1
    state_file.write_text(json.dumps(state, sort_keys=True))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
