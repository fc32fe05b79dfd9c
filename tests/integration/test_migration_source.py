"""A migration's source on a real broker: its preflight names a planned topic the old cluster
lacks or holds with more partitions than planned, and users of the stack's names it did not
make (adopting them on purpose leaves only the topics); and the mirror principal's grants of
each side go through the shipped provider exactly, and go again with it."""

from __future__ import annotations

from typing import Any

import yaml

from infra.live.cluster_admin import AdminLogin, read_grants
from infra.live.kafka_broker import Broker
from infra.model.stacks import SETTINGS_KEY
from infra.plan.model import Plan
from infra.program.admin_api_provider import ServiceAccessProvider
from infra.program.kafka_admin import plan_acl_text
from infra.program.kafka_preflight import migration_source_problems
from infra.program.previous_deployment import MIGRATION_MIRROR_OUTPUT, PreviousDeployment
from tests.broker_setup import deploy_plan
from tests.project_files import Project, migrating_stack_file

STACK = "move"
DOMAIN = "migsrc"  # topics and users of their own on the session's broker


def _migrating_plan(project: Project, broker: Broker, adopt: list[str] | None = None) -> Plan:
    document = yaml.safe_load(migrating_stack_file({}))
    source: dict[str, Any] = document["config"][SETTINGS_KEY]["migration"]["source"]
    source |= {
        "bootstrap_servers": [broker.bootstrap],
        "security_protocol": broker.security_protocol,
        "sasl_mechanism": broker.sasl_mechanism,
        "admin": {"username": broker.admin_user},
    }
    # One broker here.
    document["config"][SETTINGS_KEY]["topics"]["defaults"] |= {"replication": 1, "min_insync_replicas": 1}
    if adopt is not None:
        document["config"][SETTINGS_KEY]["migration"]["adopt"] = {"users": adopt}
    project.write(f"Pulumi.{STACK}.yaml", yaml.safe_dump(document, sort_keys=False))
    return project.plan(STACK)


def test_a_missing_topic_and_foreign_users_on_the_source_are_refused(
    project: Project, broker: Broker
) -> None:
    project.edit_topology(lambda topology: topology.update(domain=DOMAIN))
    plan = _migrating_plan(project, broker)
    # The old cluster as a team ran it: every topic but one, one with more partitions than
    # planned and one with fewer (which is fine), and the services' users.
    wider, narrower = f"{DOMAIN}.vectordb.ingest", f"{DOMAIN}.user.events"
    planned_partitions = {t.name: t.partitions for t in plan.topics}
    assert planned_partitions[narrower] > 1
    old = plan.model_copy(
        update={
            "topics": [
                t.model_copy(update={"partitions": t.partitions + {wider: 1, narrower: -1}.get(t.name, 0)})
                for t in plan.topics
                if t.name != f"{DOMAIN}.guardian.responses"
            ]
        }
    )
    deploy_plan(broker, old)
    login = AdminLogin(
        (broker.bootstrap,),
        broker.security_protocol,
        broker.sasl_mechanism,
        broker.admin_user,
        broker.admin_password,
    )
    problems = migration_source_problems(login, plan, PreviousDeployment())
    assert problems[0] == (
        f"the migration's source {broker.bootstrap} has no topic {DOMAIN}.guardian.responses: MirrorMaker 2 "
        "mirrors every planned topic from there and the stack never creates topics on the source; "
        "create them there, or add them to topology.yaml only after the migration"
    )
    assert problems[1] == (
        f"topic {wider} has {planned_partitions[wider] + 1} partitions on the migration's source "
        f"{broker.bootstrap} and {planned_partitions[wider]} planned: MirrorMaker 2 copies a record to the "
        f"partition of the same number, so the target needs at least {planned_partitions[wider] + 1}; plan "
        "them in topology.yaml (topics.<key>.partitions) or the stack's topics.overrides"
    )
    users = sorted(service.principal for service in plan.services)
    assert problems[2].startswith(f"SCRAM user {', '.join(users)} already exists on the migration's source")
    assert problems[2].endswith("Adopt it on purpose: settings.migration.adopt.users")
    assert len(problems) == 3

    adopted = _migrating_plan(project, broker, adopt=users)
    assert migration_source_problems(login, adopted, PreviousDeployment()) == problems[:2]
    # After the stack's first deployment with the migration, its users there are its own.
    deployed = PreviousDeployment(
        {MIGRATION_MIRROR_OUTPUT: plan.migration.source.principal if plan.migration else ""}
    )
    assert migration_source_problems(login, plan, deployed) == problems[:2]


def test_the_mirror_principals_grants_go_through_the_provider_exactly(
    project: Project, broker: Broker
) -> None:
    project.edit_topology(lambda topology: topology.update(domain=f"{DOMAIN}acl"))
    migration = _migrating_plan(project, broker).migration
    assert migration is not None
    provider = ServiceAccessProvider()
    for side in (migration.source, migration.target):
        principal = f"User:{side.principal}"
        acls = {plan_acl_text(acl, acl.principal): "ALLOW" for acl in side.acls}
        props = {
            "connection": {
                "bootstrap_servers": [broker.bootstrap],
                "security_protocol": broker.security_protocol,
                "sasl_mechanism": broker.sasl_mechanism,
                "username": broker.admin_user,
            },
            "admin_password": broker.admin_password,
            "service": "platform-mirror",
            "principals": [principal],
            "acls": acls,
            "users": {side.principal: [broker.sasl_mechanism]},
            "passwords": {side.principal: f"mirror-{side.alias}"},  # pragma: allowlist secret
        }
        provider.create(props)
        granted = {grant.text for grant in read_grants(broker.admin(), [principal])}
        assert granted == set(acls), side.alias
        provider.delete("platform-mirror", props)
        assert not read_grants(broker.admin(), [principal])
