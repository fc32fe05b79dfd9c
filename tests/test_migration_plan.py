"""settings.migration: its checks, the plan (sides, env, MirrorMaker's exact grants) and the
MirrorMaker 2 properties renderer."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import yaml

from infra.live.drift import Scope, compare
from infra.live.kafka_broker import KAFKA_VERSION
from infra.model.errors import ConfigError
from infra.model.migration_settings import MIRROR_MAKER_IMAGE
from infra.model.stacks import SETTINGS_KEY
from infra.plan.migration import CHECKPOINTS_TOPIC, MIRROR_SOURCE_PASSWORD_ENV, MIRROR_TARGET_PASSWORD_ENV
from infra.plan.model import BOOTSTRAP_TOKEN, SASL_PASSWORD_ENV, Plan
from infra.render.env_output import render_env
from infra.render.mirror_maker import mirror_maker_properties
from infra.render.plan_table import render_table
from tests.project_files import ENCRYPTED, Project, add_streams_and_connect, migrating_stack_file
from tests.test_import_and_drift_mapping import live_copy

STACK = "move"
FILE = f"Pulumi.{STACK}.yaml"
# Consumers of user.events and context.* first; api and guardian consume each other's topics,
# so they move together.
CONSUMERS_MOVED = dict.fromkeys(("context-aggregator", "context-vectorizer", "vectordb-ingest"), "target")


def _plan(project: Project, services: dict[str, str], **kwargs: Any) -> Plan:
    project.write(FILE, migrating_stack_file(services, **kwargs))
    return project.plan(STACK)


def _problems(project: Project, text: str, stack: str = STACK) -> list[str]:
    project.write(FILE, text)
    with pytest.raises(ConfigError) as caught:
        project.plan(stack)
    return [str(problem) for problem in caught.value.problems]


def _edited(services: dict[str, str], edit: Any) -> str:
    document = yaml.safe_load(migrating_stack_file(services))
    edit(document["config"])
    return yaml.safe_dump(document, sort_keys=False)


def test_the_mirror_image_is_the_projects_kafka_version() -> None:
    assert MIRROR_MAKER_IMAGE.split(":") == ["apache/kafka", KAFKA_VERSION]


def test_unlisted_services_stay_on_the_source_with_its_connection(project: Project) -> None:
    plan = _plan(project, {"vectordb-ingest": "target"})
    assert plan.migration is not None
    assert plan.migration.services_on("target") == ["vectordb-ingest"]
    moved, staying = plan.service("vectordb-ingest"), plan.service("api")
    assert (moved.cluster, staying.cluster) == ("target", "source")
    assert moved.env["KAFKA_BROKER_URL"] == plan.cluster.bootstrap != staying.env["KAFKA_BROKER_URL"]
    assert moved.env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert staying.env["KAFKA_BROKER_URL"] == "old-kafka-0.old:9092"
    assert staying.env["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert staying.env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    # The same principal on both clusters: only the address changes.
    assert staying.principal == "aura360.move.api" and SASL_PASSWORD_ENV in staying.secret_env


def test_a_stack_without_migration_runs_every_service_on_its_cluster(project: Project) -> None:
    plan = project.plan("prod")
    assert plan.migration is None
    assert {service.cluster for service in plan.services} == {"target"}


def test_mirror_grants_are_exact_per_side(project: Project) -> None:
    plan = _plan(project, {})
    assert plan.migration is not None
    source, target = plan.migration.source, plan.migration.target
    assert source.principal == target.principal == "aura360.move.platform-mirror"
    topics = [topic.name for topic in plan.topics]
    assert plan.migration.topics == sorted(topics)
    groups = [s.consumer_group for s in plan.services if s.consumer_group]
    assert plan.migration.groups == sorted(groups) and plan.migration.group_prefixes == []

    def grants(acls: Any) -> set[tuple[str, str, str, str]]:
        return {(a.resource_type, a.resource_name, a.pattern_type, a.operation) for a in acls}

    assert grants(source.acls) == {
        *{("TOPIC", t, "LITERAL", "READ") for t in topics},
        *{("GROUP", g, "LITERAL", "DESCRIBE") for g in groups},
    }
    internal = plan.migration.internal_prefix
    assert internal == "mm2.aura360.move"
    assert grants(target.acls) == {
        *{("TOPIC", t, "LITERAL", op) for t in topics for op in ("READ", "WRITE")},
        *{("GROUP", g, "LITERAL", "READ") for g in groups},
        *{
            ("TOPIC", t, "LITERAL", op)
            for t in ("mm2-offset-syncs.source.internal", CHECKPOINTS_TOPIC)
            for op in ("CREATE", "READ", "WRITE")
        },
        *{("TOPIC", f"{internal}.", "PREFIXED", op) for op in ("CREATE", "READ", "WRITE")},
        ("GROUP", internal, "LITERAL", "READ"),
    }
    assert {acl.service for acl in [*source.acls, *target.acls]} == {"platform-mirror"}
    # Nothing on the source is writable by the mirror.
    assert not {a.operation for a in source.acls} & {"WRITE", "CREATE", "DELETE", "ALTER"}


def test_per_instance_and_sink_groups_are_synced_by_prefix(project: Project) -> None:
    project.edit_topology(lambda data: data["services"]["guardian"].update(consumer_group_per_instance=True))
    plan = _plan(project, {})
    assert plan.migration is not None
    assert plan.migration.group_prefixes == ["aura360.guardian."]
    assert "aura360.guardian" not in plan.migration.groups


def test_a_preview_drops_the_migration(project: Project) -> None:
    project.write("Pulumi.dev.yaml", migrating_stack_file(CONSUMERS_MOVED))
    plan = project.plan("pr-7")
    assert plan.migration is None
    assert {service.cluster for service in plan.services} == {"target"}


def test_a_producer_before_its_consumers_is_refused_naming_them(project: Project) -> None:
    problems = _problems(project, migrating_stack_file({"api": "target", "guardian": "target"}))
    assert any(
        f"{FILE}: settings.migration.services.api: service 'api' writes to target while "
        "'context-aggregator' still consumes 'aura360.user.events' on source; "
        "'vectordb-ingest' still consumes 'aura360.vectordb.ingest' on source"
        in problem
        and problem.endswith("move consumers to target first, and back to source last")
        for problem in problems
    ), problems


def test_consumers_first_then_producers_is_accepted(project: Project) -> None:
    assert _plan(project, CONSUMERS_MOVED).migration is not None
    everyone = {**CONSUMERS_MOVED, "api": "target", "guardian": "target"}
    plan = _plan(project, everyone)
    assert plan.migration is not None and plan.migration.services_on("source") == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda config: config[SETTINGS_KEY]["migration"]["services"].update(billing="target"),
            f"{FILE}: settings.migration.services.billing: unknown service 'billing'; known: api,",
        ),
        (
            lambda config: config[SETTINGS_KEY]["migration"]["services"].update(api="elsewhere"),
            f"{FILE}: settings.migration.services.api: ",
        ),
        (
            lambda config: config.pop("kafka-platform:migrationSourceAdminPassword"),
            f"{FILE}: config.kafka-platform:migrationSourceAdminPassword: required by settings.migration",
        ),
        (
            lambda config: config[SETTINGS_KEY]["migration"].update(keep="infinite"),
            f"{FILE}: settings.migration.keep: must be a finite duration",
        ),
        (
            lambda config: config[SETTINGS_KEY]["migration"]["source"].update(bootstrap_servers=["old"]),
            f"{FILE}: settings.migration.source.bootstrap_servers: ",
        ),
        (
            lambda config: config[SETTINGS_KEY]["migration"]["source"].update(tls={"skip_verify": True}),
            f"{FILE}: settings.migration.source.tls: MirrorMaker 2 reaches the source with the system CAs",
        ),
    ],
    ids=["unknown service", "unknown side", "no source password", "keep forever", "bad bootstrap", "tls"],
)
def test_bad_migration_settings_name_the_key_path(project: Project, edit: Any, expected: str) -> None:
    problems = _problems(project, _edited({}, edit))
    assert any(expected in problem for problem in problems), problems


def _confluent_migrating(project: Project, stack: str = "dev") -> None:
    """The dev example (Confluent Cloud) as ``stack``, migrating from an old cluster."""
    document = yaml.safe_load((project.root / "Pulumi.dev.yaml").read_text())
    source = {"bootstrap_servers": ["old-kafka-0.old:9092"], "admin": {"username": "admin"}}
    document["config"][SETTINGS_KEY]["migration"] = {"source": source}
    document["config"]["kafka-platform:migrationSourceAdminPassword"] = {"secure": ENCRYPTED}
    project.write(f"Pulumi.{stack}.yaml", yaml.safe_dump(document))


def test_a_confluent_target_is_accepted_with_api_key_logins_and_replication_3(project: Project) -> None:
    _confluent_migrating(project)
    migration = project.plan("dev").migration
    assert migration is not None
    target = migration.target
    assert (target.bootstrap, target.security_protocol, target.sasl_mechanism) == (
        BOOTSTRAP_TOKEN,
        "SASL_SSL",
        "PLAIN",
    )
    assert target.principal == "aura360.dev.platform-mirror"
    assert migration.internal_replication == 3
    assert not [acl for acl in target.acls if acl.operation == "IDEMPOTENT_WRITE"]
    lines = mirror_maker_properties(project.plan("dev"), target_username="KEY123").splitlines()
    assert "replication.factor = 3" in lines and "status.storage.replication.factor = 3" in lines
    assert any('username="KEY123"' in line for line in lines if line.startswith("target.sasl.jaas.config"))


def test_the_mirrors_confluent_account_name_must_fit(project: Project) -> None:
    # 40 + len(".staging1.platform-admin") = 64 fits the admin; the mirror's name is one longer.
    domain = "d" * 40

    def short_names(topology: dict[str, Any]) -> None:
        topology["domain"] = domain
        services = topology["services"]
        for name in ("context-aggregator", "context-vectorizer", "vectordb-ingest"):
            services[name.rsplit("-", 1)[-1]] = services.pop(name)

    project.edit_topology(short_names)
    _confluent_migrating(project, "staging1")
    with pytest.raises(ConfigError) as caught:
        project.plan("staging1")
    assert f"service account '{domain}.staging1.platform-mirror' is 65 characters" in str(caught.value)


def test_the_properties_are_deterministic_and_hold_no_password(project: Project) -> None:
    plan = _plan(project, CONSUMERS_MOVED)
    text = mirror_maker_properties(plan)
    assert text == mirror_maker_properties(plan)
    settings = [line for line in text.splitlines() if " = " in line and not line.startswith("#")]
    lines = dict(line.split(" = ", 1) for line in settings)
    assert lines["clusters"] == "source, target"
    assert lines["source->target.enabled"] == "true" and lines["target->source.enabled"] == "false"
    assert lines["replication.policy.class"] == "org.apache.kafka.connect.mirror.IdentityReplicationPolicy"
    assert lines["replication.factor"] == lines["config.storage.replication.factor"] == "-1"
    assert lines["offset-syncs.topic.location"] == "target"
    assert lines["sync.group.offsets.enabled"] == "true"
    assert lines["sync.topic.acls.enabled"] == lines["sync.topic.configs.enabled"] == "false"
    assert lines["emit.checkpoints.interval.seconds"] == lines["refresh.groups.interval.seconds"] == "10"
    assert lines["topics"].split(", ")[0] == "aura360[.]context[.]aggregated"
    assert lines["source.bootstrap.servers"] == "old-kafka-0.old:9092"
    assert lines["source.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="aura360.move.platform-mirror" password="${{env:{MIRROR_SOURCE_PASSWORD_ENV}}}";'
    )
    assert f"${{env:{MIRROR_TARGET_PASSWORD_ENV}}}" in lines["target.sasl.jaas.config"]
    provider = "org.apache.kafka.common.config.provider.EnvVarConfigProvider"
    assert lines["config.providers.env.class"] == provider
    assert lines["target.group.id"] == "mm2.aura360.move"
    assert lines["config.storage.topic"] == "mm2.aura360.move.configs"
    assert "secure" not in text and ENCRYPTED not in text


def test_the_properties_take_the_target_address_known_after_deployment(project: Project) -> None:
    plan = _plan(project, {})
    text = mirror_maker_properties(plan, target_bootstrap="broker:9092")
    assert "target.bootstrap.servers = broker:9092\n" in text


def test_a_stack_without_migration_has_no_properties(project: Project) -> None:
    with pytest.raises(ValueError, match=r"has no settings\.migration"):
        mirror_maker_properties(project.plan("prod"))


def test_env_on_the_host_keeps_a_service_on_the_source_at_the_source(project: Project) -> None:
    """A local target: `env --host` gives the services that moved the local broker's host address,
    and leaves those still on the source at the source."""
    document = yaml.safe_load((project.root / "Pulumi.local.yaml").read_text())
    source = yaml.safe_load(migrating_stack_file({}))["config"][SETTINGS_KEY]["migration"]["source"]
    document["config"][SETTINGS_KEY]["migration"] = {"source": source, "services": CONSUMERS_MOVED}
    document["config"]["kafka-platform:migrationSourceAdminPassword"] = {"secure": ENCRYPTED}
    project.write("Pulumi.local.yaml", yaml.safe_dump(document))
    plan = project.plan("local")
    text = render_env(plan, ["api", "vectordb-ingest"], host=True)
    assert "# api (ConfigMap api-kafka-env; on the migration's source)" in text
    assert "export KAFKA_BROKER_URL=old-kafka-0.old:9092" in text
    assert f"export KAFKA_BROKER_URL={plan.cluster.local_settings().external_bootstrap}" in text


def test_the_plan_table_says_where_each_service_stands(project: Project) -> None:
    text = render_table(_plan(project, CONSUMERS_MOVED))
    assert "MIGRATION from old-kafka-0.old:9092 (source) to this stack's cluster (target)" in text
    assert "  on the source: api, guardian\n" in text
    assert (
        "SERVICE api (on the source; ConfigMap api-kafka-env, Secret api-kafka-credentials; no rollout)"
        in text
    )
    assert "source   READ       TOPIC     LITERAL   aura360.context.aggregated" in text


def test_a_streams_app_is_warned_that_its_state_is_not_mirrored(project: Project) -> None:
    project.edit_topology(add_streams_and_connect)
    plan = _plan(project, {})
    assert [w for w in plan.warnings if "migration" in w] == [
        f"{FILE}: settings.migration.services.counter: service 'counter' is a Kafka Streams app: its "
        "changelog and repartition topics are not mirrored, so on the target it resumes its input from "
        "translated offsets with empty state stores (docs/migration.md, Limits)"
    ]
    assert plan.migration is not None
    # The Connect worker's sink connectors' groups are synced by prefix; its own group is not.
    assert plan.migration.group_prefixes == ["connect-aura360.sink."]
    assert "aura360.sink" not in plan.migration.groups and "aura360.counter" in plan.migration.groups


def test_drift_on_the_target_counts_the_mirror_principal_as_the_stacks(project: Project) -> None:
    plan = _plan(project, {})
    assert plan.migration is not None
    mirror = plan.migration.target
    target = live_copy(plan)
    mirror_acls = live_copy(plan.model_copy(update={"acls": mirror.acls})).acls
    users = [mirror.principal, *(service.principal for service in plan.services)]
    live = replace(target, acls=[*target.acls, *mirror_acls], users=users)
    assert compare(plan, live, "target", Scope()).in_sync
    missing = replace(live, acls=live.acls[:-1])
    assert compare(plan, missing, "target", Scope()).missing_acls == [str(mirror_acls[-1])]
