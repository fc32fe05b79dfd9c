"""A migration under the real engine: the session broker is the target, a second broker from the
same jars the source (its topics made as the old cluster had them). `pulumi up` gives the
services their users on the source and MirrorMaker 2's principal on both; one line moves a
service; removing the migration removes the mirror's principals and nothing else. With the
Kubernetes control plane built (`make kubernetes`), MirrorMaker 2's ConfigMap, Secret and
Deployment and the switched ConfigMaps and Secrets are read back from a real API server."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config
from pulumi import automation as auto

from infra.live.cluster_admin import create_topics, read_scram_users
from infra.live.kafka_broker import Broker, local_kafka
from infra.model.stacks import MIGRATION_SOURCE_PASSWORD_KEY
from infra.plan.migration import MIRROR_SOURCE_PASSWORD_ENV, MIRROR_TARGET_PASSWORD_ENV
from infra.plan.resolve import load_plan
from infra.program.kafka_admin import topic_spec
from infra.program.mirror_maker_deployment import COMMAND
from infra.render.mirror_maker import mirror_maker_properties
from tests.e2e.engine import PARALLEL, EngineProject, existing_cluster_settings
from tests.integration import access_checks as check
from tests.kubernetes_cluster import ControlPlane

STACK = "move"
DOMAIN = "migr"
NAMESPACE = "migr-move"
CONSUMERS = ("context-aggregator", "context-vectorizer", "vectordb-ingest")
MIRROR = f"{DOMAIN}.{STACK}.platform-mirror"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, broker: Broker) -> Iterator[Broker]:
    """The old cluster: a second broker from the same jars."""
    with local_kafka(tmp_path_factory.mktemp("source-kafka")) as started:
        yield started


def migrating(target: Broker, source: Broker, sides: dict[str, str], **more: Any) -> dict[str, Any]:
    settings = existing_cluster_settings(target, **more)
    settings["migration"] = {
        "source": {
            "bootstrap_servers": [source.bootstrap],
            "security_protocol": source.security_protocol,
            "sasl_mechanism": source.sasl_mechanism,
            "admin": {"username": source.admin_user},
        },
        "services": sides,
        "mirror": {"sync_interval": "2s"},
    }
    return settings


def old_cluster_topics(project: EngineProject, source: Broker) -> None:
    """The source holds the planned topics, as a team ran it before the stack existed."""
    plan = load_plan(project.root, STACK)
    create_topics(source.admin(), {topic.name: topic_spec(topic) for topic in plan.topics})


def migration_stack(project: EngineProject, source: Broker, settings: dict[str, Any]) -> auto.Stack:
    stack = project.stack(STACK, settings)
    stack.set_config(MIGRATION_SOURCE_PASSWORD_KEY, auto.ConfigValue(source.admin_password, secret=True))
    return stack


def test_a_migration_through_the_real_engine(
    engine_project: EngineProject, broker: Broker, source: Broker
) -> None:
    project = engine_project
    project.edit_topology(lambda topology: topology.update(domain=DOMAIN))
    settings = migrating(broker, source, {})
    stack = migration_stack(project, source, settings)
    old_cluster_topics(project, source)

    # 1. Everyone on the source: each service logs in there with the credentials it is given.
    stack.up(parallel=PARALLEL)
    outputs = stack.outputs()
    env, credentials = outputs["service_env"].value, outputs["service_credentials"].value
    for service, login in credentials.items():
        assert env[service]["KAFKA_BROKER_URL"] == source.bootstrap
        assert check.can_authenticate(source, login["username"], login["password"]), service
    assert MIRROR in read_scram_users(source.admin()) and MIRROR in read_scram_users(broker.admin())
    stack.preview(expect_no_changes=True)

    # 2. The consumers move: their env and login are the target's; the others' stay.
    settings["migration"]["services"] = dict.fromkeys(CONSUMERS, "target")
    project.write_settings(STACK, settings)
    stack.up(parallel=PARALLEL)
    outputs = stack.outputs()
    env, credentials = outputs["service_env"].value, outputs["service_credentials"].value
    for service, login in credentials.items():
        cluster = broker if service in CONSUMERS else source
        assert env[service]["KAFKA_BROKER_URL"] == cluster.bootstrap, service
        assert check.can_authenticate(cluster, login["username"], login["password"]), service

    # 3. Everyone moved, then the migration removed: the mirror's users go from both clusters,
    #    the services' users stay on the source (it goes away whole).
    settings["migration"]["services"] = dict.fromkeys(credentials, "target")
    project.write_settings(STACK, settings)
    stack.up(parallel=PARALLEL)
    del settings["migration"]
    project.write_settings(STACK, settings)
    stack.up(parallel=PARALLEL)
    assert MIRROR not in read_scram_users(source.admin())
    assert MIRROR not in read_scram_users(broker.admin())
    assert {f"{DOMAIN}.{STACK}.{service}" for service in credentials} <= set(read_scram_users(source.admin()))
    stack.destroy(parallel=PARALLEL)


def _decoded(secret: client.V1Secret) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in (secret.data or {}).items()}


def test_mirror_maker_and_the_switched_env_on_a_real_api_server(
    engine_project: EngineProject, broker: Broker, source: Broker, plane: ControlPlane
) -> None:
    project = engine_project
    project.edit_topology(lambda topology: topology.update(domain=f"{DOMAIN}k"))
    settings = migrating(
        broker, source, dict.fromkeys(CONSUMERS, "target"), kubernetes={"namespace": NAMESPACE}
    )
    stack = migration_stack(project, source, settings)
    old_cluster_topics(project, source)
    stack.set_config("kubernetes:kubeconfig", auto.ConfigValue(str(plane.kubeconfig)))
    api = config.new_client_from_config(config_file=str(plane.kubeconfig))
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace({"metadata": {"name": NAMESPACE}})

    stack.up(parallel=PARALLEL)
    plan = load_plan(project.root, STACK)
    name = f"{plan.domain}-mirror-maker"
    properties = core.read_namespaced_config_map(name, NAMESPACE).data["mm2.properties"]
    assert properties == mirror_maker_properties(plan, target_bootstrap=broker.bootstrap)
    passwords = _decoded(core.read_namespaced_secret(f"{name}-credentials", NAMESPACE))
    assert passwords[MIRROR_SOURCE_PASSWORD_ENV] not in properties
    mirror = f"{plan.domain}.{STACK}.platform-mirror"
    assert check.can_authenticate(source, mirror, passwords[MIRROR_SOURCE_PASSWORD_ENV])
    assert check.can_authenticate(broker, mirror, passwords[MIRROR_TARGET_PASSWORD_ENV])
    container = apps.read_namespaced_deployment(name, NAMESPACE).spec.template.spec.containers[0]
    assert (container.image, container.command) == (plan.migration.image if plan.migration else "", COMMAND)
    for service in plan.services:
        data = core.read_namespaced_config_map(service.config_map, NAMESPACE).data
        login = _decoded(core.read_namespaced_secret(str(service.secret), NAMESPACE))
        cluster = broker if service.name in CONSUMERS else source
        assert data["KAFKA_BROKER_URL"] == cluster.bootstrap, service.name
        assert check.can_authenticate(cluster, login["KAFKA_SASL_USERNAME"], login["KAFKA_SASL_PASSWORD"])

    # Removing the migration (everyone moved) removes MirrorMaker 2's objects, and only them.
    settings["migration"]["services"] = {service.name: "target" for service in plan.services}
    project.write_settings(STACK, settings)
    stack.up(parallel=PARALLEL)
    config_maps = {item.metadata.name for item in core.list_namespaced_config_map(NAMESPACE).items}
    del settings["migration"]
    project.write_settings(STACK, settings)
    stack.up(parallel=PARALLEL)
    assert not apps.list_namespaced_deployment(NAMESPACE).items
    left = {item.metadata.name for item in core.list_namespaced_config_map(NAMESPACE).items}
    assert left == config_maps - {name}
    stack.destroy(parallel=PARALLEL)
