"""`init`: a team's own topology.yaml and its local, dev and prod stack files from a few flags
(its domain, topics with their producers and consumers, and a provider for dev and prod)."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.commands.common import EXIT_CONFIG_ERROR, EXIT_OK, CommandFailed, stacks_in
from infra.model.errors import ConfigError, Problem
from infra.model.event_schemas import files_in, load_event_schemas
from infra.model.names import RESERVED_SERVICE_NAMES, dns_label_problem, topic_name_problem
from infra.model.stacks import (
    ADMIN_PASSWORD_KEY,
    SETTINGS_KEY,
    TOPOLOGY_FILE,
    checked_stack,
    settings_from_config,
)
from infra.model.topology import Topology, key_template_problem, load_topology, topology_from_data
from infra.plan.resolve import resolve_plan

DEPLOYED_STACKS = ("dev", "prod")
STACKS = ("local", *DEPLOYED_STACKS)
PROVIDERS = ("confluent", "msk", "kafka")
CLOUDS = ("AWS", "GCP", "AZURE")
DEFAULT_REGIONS = {"AWS": "us-east-1", "GCP": "us-east1", "AZURE": "eastus"}
TOPIC_PARTITIONS = 3
TOPIC_RETENTION = "7d"
MSK_KAFKA_VERSION = "3.6.0"
MSK_INSTANCE_TYPES = {"dev": "kafka.t3.small", "prod": "kafka.m5.large"}
MIN_MSK_BROKERS = 3  # replication 3, as production requires

_EVENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_HOST_PORT = re.compile(r"^[A-Za-z0-9.-]+:\d{1,5}$")
_CONFLUENT_CLUSTER = re.compile(r"^(env-[A-Za-z0-9]+)/(lkc-[A-Za-z0-9]+)$")


def stack_file(stack: str) -> str:
    return f"Pulumi.{stack}.yaml"


@dataclass(frozen=True)
class TopicFlow:
    """`--topic orders=checkout:billing,mailer`: a topic, the services writing it, those reading it."""

    key: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class EventRoute:
    """`--event order.placed=orders:order_id`: an event published to a topic, with its key."""

    name: str
    topic: str
    key: str | None  # a key template such as "{order_id}"
    key_field: str | None  # the field it names, when it is one plain field
    text: str


@dataclass(frozen=True)
class ForStack:
    """A provider flag's value, for one stack (`prod=eu-west-1`) or every stack that uses it."""

    stack: str | None
    value: Any
    text: str


def _services(value: str, text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    for name in names:
        if problem := dns_label_problem(name, max_length=40):
            raise argparse.ArgumentTypeError(f"'{value}': service name {problem}")
        if name in RESERVED_SERVICE_NAMES:
            raise argparse.ArgumentTypeError(f"'{value}': '{name}' is the platform's own identity")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"'{value}': a service is listed twice")
    return names


def topic_flow(value: str) -> TopicFlow:
    key, equals, flow = value.partition("=")
    producers, colon, consumers = flow.partition(":")
    if not equals or not colon or not key:
        raise argparse.ArgumentTypeError(
            f"'{value}' is not <topic>=<producers>:<consumers>, e.g. orders=checkout:billing,mailer"
        )
    if problem := topic_name_problem(key):
        raise argparse.ArgumentTypeError(f"'{value}': topic name {problem}")
    parsed = TopicFlow(key, _services(value, producers), _services(value, consumers), value)
    if not parsed.producers and not parsed.consumers:
        raise argparse.ArgumentTypeError(f"'{value}': name a producer or a consumer of topic '{key}'")
    return parsed


def event_route(value: str) -> EventRoute:
    name, equals, target = value.partition("=")
    topic, _, key = target.partition(":")
    if not equals or not topic or not _EVENT_NAME.match(name):
        raise argparse.ArgumentTypeError(
            f"'{value}' is not <event>=<topic>[:<key field>], e.g. order.placed=orders:order_id"
        )
    if not key:
        return EventRoute(name, topic, None, None, value)
    if "{" not in key and not key.isidentifier():
        raise argparse.ArgumentTypeError(
            f"'{value}': the key '{key}' is neither a field name (order_id) "
            "nor a template (order:{order_id})"
        )
    template = key if "{" in key else f"{{{key}}}"
    if problem := key_template_problem(template):
        raise argparse.ArgumentTypeError(f"'{value}': {problem}")
    return EventRoute(name, topic, template, key if "{" not in key else None, value)


def for_stack(parse: Callable[[str], Any]) -> Callable[[str], ForStack]:
    """A flag value, optionally for one stack only: `eu-west-1` or `prod=eu-west-1`."""

    def parse_for_stack(text: str) -> ForStack:
        stack, equals, value = text.partition("=")
        if not equals or stack not in DEPLOYED_STACKS:
            stack, value = "", text
        try:
            return ForStack(stack or None, parse(value), text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"'{text}': {exc}") from exc

    return parse_for_stack


def _cloud(value: str) -> str:
    if value.upper() not in CLOUDS:
        raise ValueError(f"not one of {', '.join(CLOUDS)}")
    return value.upper()


def _region(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9-]+", value):
        raise ValueError("not a region name such as us-east-1")
    return value


def _confluent_cluster(value: str) -> dict[str, str]:
    match = _CONFLUENT_CLUSTER.match(value)
    if match is None:
        raise ValueError("not <environment id>/<cluster id>, e.g. env-a1b2c3/lkc-d4e5f6")
    return {"environment_id": match.group(1), "cluster_id": match.group(2)}


def _ids(prefix: str, kind: str, low: int, high: int) -> Callable[[str], list[str]]:
    def parse(value: str) -> list[str]:
        ids = [part.strip() for part in value.split(",") if part.strip()]
        for one in ids:
            if not one.startswith(prefix) or one == prefix:
                raise ValueError(f"'{one}' is not a {kind} id ({prefix}...)")
        if len(set(ids)) != len(ids):
            raise ValueError(f"{kind} ids must be distinct")
        if not low <= len(ids) <= high:
            raise ValueError(f"give {low} to {high} {kind} ids, separated by commas")
        return ids

    return parse


def _bootstrap(value: str) -> list[str]:
    servers = [part.strip() for part in value.split(",") if part.strip()]
    if not servers:
        raise ValueError("give host:port addresses, separated by commas")
    for server in servers:
        if not _HOST_PORT.match(server):
            raise ValueError(f"'{server}' is not a host:port address")
    return servers


def _admin_user(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._@-]+", value):
        raise ValueError("not a user name")
    return value


@dataclass(frozen=True)
class ProviderFlag:
    """A flag that sets a provider's settings."""

    flag: str
    providers: tuple[str, ...]
    parse: Callable[[str], Any]
    metavar: str
    help: str
    required: bool = False

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


PROVIDER_FLAGS = (
    ProviderFlag(
        "--cloud", ("confluent",), _cloud, "AWS|GCP|AZURE", "Confluent Cloud's cloud (default: AWS)"
    ),
    ProviderFlag(
        "--region",
        ("confluent", "msk"),
        _region,
        "REGION",
        "the region (default: us-east-1; Confluent on GCP us-east1, on AZURE eastus); MSK: aws:region",
    ),
    ProviderFlag(
        "--confluent-cluster",
        ("confluent",),
        _confluent_cluster,
        "ENV_ID/CLUSTER_ID",
        "use this existing Confluent Cloud cluster instead of creating one",
    ),
    ProviderFlag(
        "--subnets",
        ("msk",),
        _ids("subnet-", "subnet", 2, 3),
        "SUBNET,SUBNET[,SUBNET]",
        "MSK: the brokers' subnets, one per availability zone",
        required=True,
    ),
    ProviderFlag(
        "--security-groups",
        ("msk",),
        _ids("sg-", "security group", 1, 5),
        "SG[,SG]",
        "MSK: the brokers' security groups",
        required=True,
    ),
    ProviderFlag(
        "--bootstrap",
        ("kafka",),
        _bootstrap,
        "HOST:PORT[,...]",
        "existing cluster: its bootstrap servers (SASL_SSL, SCRAM-SHA-512)",
        required=True,
    ),
    ProviderFlag(
        "--admin-user",
        ("kafka",),
        _admin_user,
        "NAME",
        "existing cluster: the SCRAM user Pulumi manages topics, users and ACLs with",
        required=True,
    ),
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "init",
        help="write topology.yaml and the local, dev and prod stack files for your own domain",
        description="Provider flags apply to every stack on that provider, "
        "or to one stack: --region prod=eu-west-1.",
    )
    parser.add_argument(
        "--domain",
        help="your domain: topic names are '<domain>.<topic>' (default without --topic: topology.yaml's)",
    )
    parser.add_argument(
        "--topic",
        action="append",
        default=[],
        type=topic_flow,
        metavar="TOPIC=PRODUCERS:CONSUMERS",
        help="a topic and the services writing and reading it, e.g. orders=checkout:billing,mailer "
        "(repeatable; the services are those named here). None: keep topology.yaml (e.g. from "
        "`import`) and write only the stack files for it",
    )
    parser.add_argument(
        "--event",
        action="append",
        default=[],
        type=event_route,
        metavar="EVENT=TOPIC[:KEY]",
        help="an event published to a topic, keyed by a field, e.g. order.placed=orders:order_id",
    )
    for stack in DEPLOYED_STACKS:
        parser.add_argument(
            f"--{stack}", required=True, choices=PROVIDERS, help=f"the {stack} stack's cluster"
        )
    for option in PROVIDER_FLAGS:
        parser.add_argument(
            option.flag,
            action="append",
            default=[],
            type=for_stack(option.parse),
            metavar=option.metavar,
            help=option.help,
        )
    parser.add_argument(
        "--no-kubernetes",
        action="store_true",
        help="no Kubernetes objects: each service's env is the stack output service_env",
    )
    parser.add_argument("--force", action="store_true", help="replace topology.yaml and the stack files")


def run(args: argparse.Namespace, project_dir: Path) -> int:
    providers = {stack: getattr(args, stack) for stack in DEPLOYED_STACKS}
    options = _provider_options(args, providers)
    files: dict[str, str] = {}
    if args.topic:
        if args.domain is None:
            raise CommandFailed(EXIT_CONFIG_ERROR, "--domain: required with --topic")
        if problem := dns_label_problem(args.domain, max_length=40):
            raise CommandFailed(EXIT_CONFIG_ERROR, f"--domain '{args.domain}': {problem}")
        data = _topology(args.domain, args.topic, args.event)
        try:
            topology = topology_from_data(data, TOPOLOGY_FILE)
        except ConfigError as exc:
            raise CommandFailed(EXIT_CONFIG_ERROR, "\n".join(map(_as_flag, exc.problems))) from exc
        files[TOPOLOGY_FILE] = _topology_text(data)
    else:
        topology = _kept_topology(args, project_dir)
    configs = {"local": _local_config(topology.domain, args.no_kubernetes)}
    for stack, provider in providers.items():
        configs[stack] = _deployed_config(
            stack, provider, topology.domain, options[stack], args.no_kubernetes
        )
    warnings = _check(topology, configs, project_dir)
    for stack, config in configs.items():
        files[stack_file(stack)] = _stack_text(stack, providers.get(stack, "local"), config)

    existing = [name for name in files if (project_dir / name).exists()]
    if existing and not args.force:
        raise CommandFailed(
            EXIT_CONFIG_ERROR,
            f"{', '.join(existing)} already exist in {project_dir}: pass --force to replace them",
        )
    for name, text in files.items():
        (project_dir / name).write_text(text, encoding="utf-8")
    _report(project_dir, topology, TOPOLOGY_FILE in files, configs, providers)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


def _kept_topology(args: argparse.Namespace, project_dir: Path) -> Topology:
    """Without --topic: the project's own topology.yaml (e.g. what `import` wrote) stays, and
    only the stack files are written for it."""
    if args.event:
        raise CommandFailed(
            EXIT_CONFIG_ERROR, f"--event '{args.event[0].text}': needs the --topic it goes to"
        )
    if not (project_dir / TOPOLOGY_FILE).exists():
        raise CommandFailed(
            EXIT_CONFIG_ERROR,
            f"--topic: give at least one (no {TOPOLOGY_FILE} in {project_dir} to write the stack files for)",
        )
    topology = load_topology(project_dir / TOPOLOGY_FILE)
    if args.domain is not None and args.domain != topology.domain:
        raise CommandFailed(
            EXIT_CONFIG_ERROR,
            f"--domain '{args.domain}': {TOPOLOGY_FILE} is domain '{topology.domain}' "
            "(give --topic to replace it)",
        )
    return topology


def _provider_options(args: argparse.Namespace, providers: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each deployed stack's provider flag values: a stack's own value (`prod=...`) wins over a
    shared one; a value no stack can use, or a second value for the same stack, is refused."""
    options: dict[str, dict[str, Any]] = {stack: {} for stack in DEPLOYED_STACKS}
    for option in PROVIDER_FLAGS:
        given: list[ForStack] = getattr(args, option.dest)
        shared = [value for value in given if value.stack is None]
        if len(shared) > 1:
            raise CommandFailed(EXIT_CONFIG_ERROR, f"{option.flag} '{shared[1].text}': given twice")
        for value in sorted(given, key=lambda value: value.stack is None):
            targets = [value.stack] if value.stack else list(DEPLOYED_STACKS)
            users = [stack for stack in targets if providers[stack] in option.providers]
            if not users:
                on = ", ".join(f"{stack} is {providers[stack]}" for stack in targets)
                only = " or ".join(option.providers)
                raise CommandFailed(
                    EXIT_CONFIG_ERROR, f"{option.flag} '{value.text}': only for {only} ({on})"
                )
            for stack in users:
                if value.stack is not None and option.dest in options[stack]:
                    raise CommandFailed(
                        EXIT_CONFIG_ERROR, f"{option.flag} '{value.text}': {stack} is given twice"
                    )
                options[stack].setdefault(option.dest, value.value)
    for stack, provider in providers.items():
        for option in PROVIDER_FLAGS:
            if option.required and provider in option.providers and option.dest not in options[stack]:
                raise CommandFailed(EXIT_CONFIG_ERROR, f"--{stack} {provider}: needs {option.flag}")
    return options


def _topology(domain: str, flows: list[TopicFlow], events: list[EventRoute]) -> dict[str, Any]:
    topics: dict[str, dict[str, Any]] = {}
    services: dict[str, dict[str, list[str]]] = {}
    for flow in flows:
        if flow.key in topics:
            raise CommandFailed(
                EXIT_CONFIG_ERROR, f"--topic '{flow.text}': topic '{flow.key}' is given twice"
            )
        topics[flow.key] = {"partitions": TOPIC_PARTITIONS, "retention": TOPIC_RETENTION}
        for role, names in (("produces", flow.producers), ("consumes", flow.consumers)):
            for name in names:
                services.setdefault(name, {"produces": [], "consumes": []})[role].append(flow.key)
    produced = {flow.key for flow in flows if flow.producers}
    event_specs: dict[str, dict[str, str]] = {}
    key_fields: dict[str, set[str | None]] = {}
    for event in events:
        shown = f"--event '{event.text}'"
        if event.name in event_specs:
            raise CommandFailed(EXIT_CONFIG_ERROR, f"{shown}: event '{event.name}' is given twice")
        if event.topic not in topics:
            raise CommandFailed(
                EXIT_CONFIG_ERROR, f"{shown}: no --topic '{event.topic}'; topics: {', '.join(topics)}"
            )
        if event.topic not in produced:
            raise CommandFailed(EXIT_CONFIG_ERROR, f"{shown}: no service produces topic '{event.topic}'")
        event_specs[event.name] = {"topic": event.topic, "transport": "kafka"}
        if event.key is not None:
            event_specs[event.name]["key"] = event.key
        key_fields.setdefault(event.topic, set()).add(event.key_field)
    for topic, fields in key_fields.items():
        if len(fields) == 1 and (field := next(iter(fields))) is not None:
            topics[topic]["key"] = field  # documents the partition key its events share
    data: dict[str, Any] = {
        "domain": domain,
        "topics": topics,
        "services": {
            name: {role: keys for role, keys in roles.items() if keys} for name, roles in services.items()
        },
    }
    if event_specs:
        data["events"] = event_specs
    return data


def _local_config(domain: str, no_kubernetes: bool) -> dict[str, Any]:
    settings = {
        "environment": "local",
        "kafka": {
            "provider": "local",
            "local": {
                "internal_bootstrap": "redpanda:9092",
                "external_bootstrap": "localhost:19092",
                "console_port": 8080,
                "manifests_dir": "build/k8s-local",
            },
        },
        "topics": {"defaults": {"replication": 1, "min_insync_replicas": 1}},
        "messaging": {"backend": "kafka", "dual_write": False},
        "kubernetes": "none" if no_kubernetes else {"namespace": f"{domain}-local"},
    }
    return {SETTINGS_KEY: settings}


def _deployed_config(
    stack: str, provider: str, domain: str, options: dict[str, Any], no_kubernetes: bool
) -> dict[str, Any]:
    production = stack == "prod"
    settings: dict[str, Any] = {"environment": stack}
    if production:
        settings["production"] = True
    settings["kafka"] = {"provider": provider, **_cluster_section(stack, provider, options)}
    settings["topics"] = {"defaults": {"replication": 3, "min_insync_replicas": 2}}
    settings["messaging"] = {"backend": "kafka", "dual_write": False}
    namespace = domain if production else f"{domain}-{stack}"
    settings["kubernetes"] = "none" if no_kubernetes else {"namespace": namespace}
    if production:
        settings["protection"] = {"protect": True}
    config: dict[str, Any] = {}
    if provider == "msk":
        config["aws:region"] = options.get("region", DEFAULT_REGIONS["AWS"])
    config[SETTINGS_KEY] = settings
    return config


def _cluster_section(stack: str, provider: str, options: dict[str, Any]) -> dict[str, Any]:
    production = stack == "prod"
    if provider == "confluent":
        cloud = options.get("cloud", "AWS")
        confluent: dict[str, Any] = {}
        if "confluent_cluster" in options:
            confluent["existing_cluster"] = options["confluent_cluster"]
        confluent |= {
            "cloud": cloud,
            "region": options.get("region", DEFAULT_REGIONS[cloud]),
            "availability": "MULTI_ZONE" if production else "SINGLE_ZONE",
            "tier": "standard" if production else "basic",
        }
        return {"confluent": confluent}
    if provider == "msk":
        subnets: list[str] = options["subnets"]
        brokers = len(subnets) * -(-MIN_MSK_BROKERS // len(subnets))  # spread evenly over the subnets
        return {
            "msk": {
                "kafka_version": MSK_KAFKA_VERSION,
                "broker_count": brokers,
                "instance_type": MSK_INSTANCE_TYPES[stack],
                "volume_size_gib": 100,
                "subnet_ids": subnets,
                "security_group_ids": options["security_groups"],
                "acl_bootstrap": True,  # the first `pulumi up` only: MSK has no super user
                "access": "vpc",
            }
        }
    return {
        "cluster": {
            "bootstrap_servers": options["bootstrap"],
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "admin": {"username": options["admin_user"]},
        }
    }


def _check(topology: Topology, configs: dict[str, dict[str, Any]], project_dir: Path) -> list[str]:
    """What `validate` will say of the stack files, before any is written: flags that would
    make an invalid file stop here, with nothing changed. Returns its warnings."""
    problems: list[Problem] = []
    warnings: list[str] = []
    schemas = load_event_schemas(topology, files_in(project_dir))  # a kept topology may name some
    for stack, config in configs.items():
        label = stack_file(stack)
        try:
            settings = settings_from_config(config, label)
            # The admin password is the one thing init cannot write: it is set as encrypted config.
            keys = [*config, ADMIN_PASSWORD_KEY]
            plan = resolve_plan(
                topology,
                checked_stack(stack, label, settings, topology, config_keys=keys),
                schemas,
            )
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        warnings.extend(plan.warnings)
    if problems:
        raise ConfigError(problems)
    return warnings


def _as_flag(problem: Problem) -> str:
    """A topology problem as the flag that made it (a topic or event key, or a service)."""
    flags = {"topics": "--topic", "events": "--event", "services": "--topic service"}
    if len(problem.path) >= 2 and str(problem.path[0]) in flags:
        return f"{flags[str(problem.path[0])]} '{problem.path[1]}': {problem.message}"
    return str(problem)


def _yaml(data: Any, *, flow_leaves: bool = False) -> str:
    """Block style; with ``flow_leaves``, a mapping or list of plain values on one line, as
    the shipped topology writes them (`produces: [orders]`)."""
    flow = None if flow_leaves else False
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=flow, width=100)


def _topology_text(data: dict[str, Any]) -> str:
    header = (
        f"# The {data['domain']} domain, written by `kafka-platform init`; edit it freely\n"
        '# (docs/topology.md). Topic names are "<domain>.<key>"; each service\'s ACLs, credential\n'
        "# and env come from its produces/consumes.\n"
    )
    return header + _yaml(data, flow_leaves=True)


STACK_HEADERS = {
    "local": (
        "# Laptop stack: the local Kafka of `make local` (Redpanda with Docker, else Apache Kafka\n"
        "# from its jars), no cloud account. Kubernetes manifests, if any, are rendered to a directory.\n"
    ),
    "confluent": (
        "# {stack} on Confluent Cloud. Secrets, never here in plain text:\n"
        "#   pulumi config set --stack {stack} --secret confluentcloud:cloudApiKey ...\n"
        "#   pulumi config set --stack {stack} --secret confluentcloud:cloudApiSecret ...\n"
    ),
    "msk": (
        "# {stack} on AWS MSK (SASL/SCRAM, TLS, ACLs). AWS credentials come from the environment.\n"
        "# acl_bootstrap: true is for the first `pulumi up` only, which must run inside the VPC:\n"
        '# then set it to false and `pulumi up` again (docs/deploying.md, "AWS MSK").\n'
    ),
    "kafka": (
        "# {stack} on a Kafka cluster run elsewhere, through the Kafka Admin API. `validate` refuses\n"
        "# this stack until the admin's password is set as encrypted config:\n"
        "#   pulumi config set --stack {stack} --secret kafka-platform:kafkaAdminPassword ...\n"
    ),
}
KUBERNETES_HEADER = (
    "# Rollouts are opt-in: kubernetes.deployments maps a service to the Deployment to restart\n"
    "# when its env or credential changes (docs/kubernetes.md).\n"
)


def _stack_text(stack: str, provider: str, config: dict[str, Any]) -> str:
    header = STACK_HEADERS["local" if stack == "local" else provider].format(stack=stack)
    if config[SETTINGS_KEY]["kubernetes"] != "none" and stack != "local":
        header += KUBERNETES_HEADER
    return header + _yaml({"config": config})


def _describe(provider: str, settings: dict[str, Any]) -> str:
    kafka = settings["kafka"]
    if provider == "confluent":
        confluent = kafka["confluent"]
        where = f"Confluent Cloud {confluent['cloud']} {confluent['region']}, {confluent['tier']}"
        existing = confluent.get("existing_cluster")
        return where + (f", existing cluster {existing['cluster_id']}" if existing else "")
    if provider == "msk":
        msk = kafka["msk"]
        return f"AWS MSK, {msk['broker_count']} x {msk['instance_type']}"
    return f"existing cluster {','.join(kafka['cluster']['bootstrap_servers'])}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _report(
    project_dir: Path,
    topology: Topology,
    wrote_topology: bool,
    configs: dict[str, dict[str, Any]],
    providers: dict[str, str],
) -> None:
    services = list(topology.services)
    counts = [
        _count(len(topology.topics), "topic"),
        _count(len(services), "service"),
        _count(len(topology.events), "event"),
    ]
    done = "wrote" if wrote_topology else "kept"
    print(f"init: {done} {TOPOLOGY_FILE} (domain {topology.domain}: {', '.join(counts)})")
    print(f"init: wrote {stack_file('local')} (the local Kafka)")
    for stack, provider in providers.items():
        print(f"init: wrote {stack_file(stack)} ({_describe(provider, configs[stack][SETTINGS_KEY])})")
    others = [stack_file(stack) for stack in stacks_in(project_dir) if stack not in STACKS]
    if others:
        print(f"init: left alone {', '.join(others)}: still the old topology's; edit or delete it")
    if providers["dev"] == "msk":
        print(
            "init: pr-<n> previews need a Confluent dev stack; on MSK `validate` refuses them "
            "(docs/pr-previews.md)"
        )
    print("next:")
    for stack, provider in providers.items():
        if provider == "kafka":
            print(f"  pulumi config set --stack {stack} --secret {ADMIN_PASSWORD_KEY} <admin password>")
    print("  kafka-platform validate")
    print("  make local")
    service = f" --service {services[0]}" if services else ""
    print(f'  eval "$(kafka-platform env --stack local --host --secure{service})"')
