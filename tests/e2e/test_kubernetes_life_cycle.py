"""The Kubernetes half under the real engine, the real pulumi-kubernetes provider and a real
kube-apiserver: what every service reads (its ConfigMap, its Secret, the rollout checksum on
its Deployment) through a stack's whole life, read back with the official Kubernetes client;
and a backend flip by `pulumi up` reaching a service that publishes with the client.

There is no kubelet: pods never become Ready, which is what an outage looks like to a rollout.
"""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, utils
from kubernetes.client.exceptions import ApiException
from pulumi import automation as auto

from infra.live.kafka_broker import Broker
from infra.plan.resolve import load_plan
from infra.program.kubernetes_env import CHECKSUM_ANNOTATION, ROLLOUT_FIELD_MANAGER
from tests.e2e.engine import (
    PARALLEL,
    EngineProject,
    deploy_with_release,
    existing_cluster_settings,
)
from tests.integration import access_checks as check
from tests.integration.client_env import fallback_worker, handled_by_celery, ids, publish_phase, records
from tests.kubernetes_cluster import ControlPlane
from tests.project_files import EXAMPLE

STACK = "k8s"
NAMESPACE = "aura360-k8s"
MAPPED = {"api": "aura360-api", "guardian": "aura360-guardian"}
UNMAPPED = "aura360-aggregator"
PER_PHASE = 25  # events per phase of the backend flip
OTHER_MANAGER = "team-deploy"  # how the teams deploy their own Deployments (kubectl, Argo CD, ...)


def apis(plane: ControlPlane) -> tuple[client.CoreV1Api, client.AppsV1Api]:
    api = config.new_client_from_config(config_file=str(plane.kubeconfig))
    return client.CoreV1Api(api), client.AppsV1Api(api)


def team_deployment(name: str, image: str = "registry.example/app:1") -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def team_apply(apps: client.AppsV1Api, body: dict[str, Any]) -> None:
    """What a team's own deploy does: server-side apply under its own field manager."""
    apps.patch_namespaced_deployment(
        body["metadata"]["name"],
        NAMESPACE,
        body,
        field_manager=OTHER_MANAGER,
        force=True,
        _content_type="application/apply-patch+yaml",
    )


def checksum(apps: client.AppsV1Api, name: str) -> str | None:
    deployment = apps.read_namespaced_deployment(name, NAMESPACE)
    annotations = deployment.spec.template.metadata.annotations or {}
    value: str | None = annotations.get(CHECKSUM_ANNOTATION)
    return value


def changes(result: auto.UpResult | auto.PreviewResult) -> dict[str, int]:
    summary = (
        result.change_summary if isinstance(result, auto.PreviewResult) else result.summary.resource_changes
    )
    return {kind: count for kind, count in (summary or {}).items() if kind != "same"}


def uids(core: client.CoreV1Api, kind: str) -> dict[str, str]:
    listing = (
        core.list_namespaced_config_map(NAMESPACE)
        if kind == "ConfigMap"
        else core.list_namespaced_secret(NAMESPACE)
    )
    return {item.metadata.name: item.metadata.uid for item in listing.items if "kafka" in item.metadata.name}


@pytest.fixture
def k8s_stack(
    engine_project: EngineProject, broker: Broker, plane: ControlPlane
) -> tuple[EngineProject, dict[str, Any], auto.Stack]:
    project = engine_project
    project.edit_topology(lambda topology: topology.update(domain="kube"))
    settings = existing_cluster_settings(
        broker, kubernetes={"namespace": NAMESPACE, "deployments": dict(MAPPED)}
    )
    stack = project.stack(STACK, settings)
    stack.set_config("kubernetes:kubeconfig", auto.ConfigValue(str(plane.kubeconfig)))
    return project, settings, stack


def test_the_kubernetes_half_through_a_stacks_life(
    k8s_stack: tuple[EngineProject, dict[str, Any], auto.Stack], broker: Broker, plane: ControlPlane
) -> None:
    project, settings, stack = k8s_stack
    core, apps = apis(plane)

    # A missing namespace, then a missing Deployment: refused in preview and in up, naming what is
    # missing, with nothing changed (the Kafka side included).
    with pytest.raises(auto.CommandError, match=f"namespace {NAMESPACE} does not exist"):
        stack.preview()
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    for name in (*MAPPED.values(), UNMAPPED):
        if name != MAPPED["guardian"]:
            team_apply(apps, team_deployment(name))
    with pytest.raises(
        auto.CommandError, match=re.escape("kubernetes.deployments.guardian: Deployment aura360-guardian")
    ):
        stack.up(parallel=PARALLEL)
    assert not broker.admin().list_topics(timeout=10).topics.keys() & {"kube.user.events"}
    assert uids(core, "ConfigMap") == {}
    team_apply(apps, team_deployment(MAPPED["guardian"]))

    # 1. Up from empty, quickly although no pod ever becomes Ready (the patches do not await).
    started = time.monotonic()
    up = stack.up(parallel=PARALLEL)
    assert time.monotonic() - started < 180, "a rollout patch must not wait for ready pods"
    assert set(changes(up)) == {"create"}
    plan = load_plan(project.root, STACK)
    credentials = stack.outputs()["service_credentials"]
    assert credentials.secret
    bootstrap = broker.bootstrap
    for service in plan.services:
        data = core.read_namespaced_config_map(service.config_map, NAMESPACE).data
        assert data == {k: bootstrap if v == "${cluster.bootstrap}" else v for k, v in service.env.items()}
        secret = core.read_namespaced_secret(service.secret, NAMESPACE).data
        username = base64.b64decode(secret["KAFKA_SASL_USERNAME"]).decode()
        password = base64.b64decode(secret["KAFKA_SASL_PASSWORD"]).decode()
        assert password == credentials.value[service.name]["password"]
        assert password not in yaml.safe_dump(data)
        assert check.can_authenticate(broker, username, password)
    for name in MAPPED.values():
        assert checksum(apps, name)
    assert checksum(apps, UNMAPPED) is None
    assert {d.metadata.name for d in apps.list_namespaced_deployment(NAMESPACE).items} == {
        *MAPPED.values(),
        UNMAPPED,
    }, "nothing created"

    # 2. Nothing to do, also after reading the cluster back.
    stack.preview(expect_no_changes=True)
    stack.preview(expect_no_changes=True, refresh=True)

    # 3. A flag flip: ConfigMaps updated in place (same uid), mapped checksums change, nothing else.
    config_maps, secrets = uids(core, "ConfigMap"), uids(core, "Secret")
    before = {name: checksum(apps, name) for name in MAPPED.values()}
    settings["messaging"] |= {"dual_write": True, "celery_broker": {"url": "redis://celery.internal:6379/1"}}
    project.write_settings(STACK, settings)
    flipped = stack.up(parallel=PARALLEL)
    assert changes(flipped) == {"update": len(plan.services) + len(MAPPED)}
    assert uids(core, "ConfigMap") == config_maps
    assert core.read_namespaced_config_map("api-kafka-env", NAMESPACE).data["MESSAGING_DUAL_WRITE"] == "true"
    assert all(checksum(apps, name) != before[name] for name in MAPPED.values())

    # 4. Rotation: the Secrets are updated in place, the checksums change again.
    before = {name: checksum(apps, name) for name in MAPPED.values()}
    settings["credentials"] = {"rotation": {"generation": 2}}
    project.write_settings(STACK, settings)
    stack.up(parallel=PARALLEL)
    assert uids(core, "Secret") == secrets
    assert all(checksum(apps, name) != before[name] for name in MAPPED.values())

    # 5. The team's own edit (an image) is kept; an overwritten checksum is found by refresh and
    #    repaired.
    team_apply(apps, team_deployment(MAPPED["api"], image="registry.example/app:2"))
    deployed = checksum(apps, MAPPED["api"])
    stack.preview(expect_no_changes=True, refresh=True)
    overwritten = team_deployment(MAPPED["api"], image="registry.example/app:2")
    overwritten["spec"]["template"]["metadata"]["annotations"] = {CHECKSUM_ANNOTATION: "stale"}
    team_apply(apps, overwritten)
    assert changes(stack.preview(refresh=True)).get("update") == 1
    stack.up(parallel=PARALLEL, refresh=True)
    api = apps.read_namespaced_deployment(MAPPED["api"], NAMESPACE)
    assert api.spec.template.metadata.annotations[CHECKSUM_ANNOTATION] == deployed
    assert api.spec.template.spec.containers[0].image == "registry.example/app:2"

    # 6. Destroy: ConfigMaps and Secrets gone; Deployments intact and not rolled (the patches are
    #    retained); one field manager for the checksum, also after another up/destroy cycle.
    def generation(name: str) -> int:
        value: int = apps.read_namespaced_deployment(name, NAMESPACE).metadata.generation
        return value

    generations = {name: generation(name) for name in (*MAPPED.values(), UNMAPPED)}
    stack.destroy(parallel=PARALLEL)
    assert uids(core, "ConfigMap") == {} and uids(core, "Secret") == {}
    assert {name: generation(name) for name in generations} == generations
    assert checksum(apps, MAPPED["api"]) == deployed
    stack.up(parallel=PARALLEL)
    stack.destroy(parallel=PARALLEL)
    for name in MAPPED.values():
        deployment = apps.read_namespaced_deployment(name, NAMESPACE)
        managers = {
            field.manager
            for field in deployment.metadata.managed_fields
            if CHECKSUM_ANNOTATION in str(field.fields_v1)
        }
        assert managers == {ROLLOUT_FIELD_MANAGER}, managers


def test_a_stack_that_owns_its_namespace_creates_it_and_removes_it(
    engine_project: EngineProject, broker: Broker, plane: ControlPlane
) -> None:
    """Like a pr-<n> preview: a fresh namespace, no rollout patches; destroy removes it all."""
    project = engine_project
    project.edit_topology(lambda topology: topology.update(domain="kubeown"))
    namespace = "kubeown-e2e"
    settings = existing_cluster_settings(
        broker, kubernetes={"namespace": namespace, "create_namespace": True}
    )
    stack = project.stack("owned", settings)
    stack.set_config("kubernetes:kubeconfig", auto.ConfigValue(str(plane.kubeconfig)))
    core, apps = apis(plane)
    stack.up(parallel=PARALLEL)
    assert core.read_namespace(namespace).status.phase == "Active"
    assert apps.list_namespaced_deployment(namespace).items == []
    stack.destroy(parallel=PARALLEL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            core.read_namespace(namespace)
        except ApiException as error:
            assert error.status == 404
            return
        time.sleep(1)
    pytest.fail(f"namespace {namespace} still exists a minute after destroy")


def deployed_env(core: client.CoreV1Api, namespace: str, service: str) -> dict[str, str]:
    """What the service's pod reads with `envFrom`: its ConfigMap and its Secret."""
    env: dict[str, str] = core.read_namespaced_config_map(f"{service}-kafka-env", namespace).data
    secret = core.read_namespaced_secret(f"{service}-kafka-credentials", namespace).data
    return env | {key: base64.b64decode(value).decode() for key, value in secret.items()}


def test_a_backend_flip_by_pulumi_up_reaches_a_running_service_and_loses_no_event(
    engine_project: EngineProject, broker: Broker, plane: ControlPlane, redis_server: str, tmp_path: Path
) -> None:
    """Switching without code changes, as the stories promise: `pulumi up` flips
    messaging.backend kafka -> celery -> kafka; after each, the publishing service restarts with
    the ConfigMap and Secret read back from the kube-apiserver (as a rollout restarts it) and
    publishes continuously through kafka_platform_client. A real Celery worker (prefork, the
    consuming service's env) handles the Celery phase. Counted: every confirmed event is on
    exactly one backend, none lost."""
    project = engine_project
    project.edit_topology(lambda topology: topology.update(domain="kubeflip"))
    namespace = "kubeflip-e2e"
    settings = existing_cluster_settings(
        broker, kubernetes={"namespace": namespace, "create_namespace": True}
    )
    redis_base = redis_server.rsplit("/", 1)[0]
    settings["messaging"] = {
        "backend": "kafka",
        "dual_write": False,
        "celery_broker": {"url": f"{redis_base}/1"},
    }
    stack = project.stack("flip", settings)
    stack.set_config("kubernetes:kubeconfig", auto.ConfigValue(str(plane.kubeconfig)))
    core, _ = apis(plane)
    record_url = f"{redis_base}/2"

    confirmed: dict[str, list[str]] = {}
    stack.up(parallel=PARALLEL)
    consumer = deployed_env(core, namespace, "context-aggregator")  # reads user.events
    with fallback_worker(consumer, record_url, tmp_path / "celery.log") as worker:
        for phase, backend in (("kafka", "kafka"), ("celery", "celery"), ("kafka again", "kafka")):
            if settings["messaging"]["backend"] != backend:
                settings["messaging"]["backend"] = backend
                project.write_settings("flip", settings)
                assert changes(stack.up(parallel=PARALLEL)) == {"update": 5}, "the ConfigMaps, nothing else"
            env = deployed_env(core, namespace, "api")
            assert env["MESSAGING_BACKEND"] == backend
            confirmed[phase] = publish_phase(env, sum(map(len, confirmed.values())), PER_PHASE)
        on_celery = handled_by_celery(record_url, len(confirmed["celery"]), worker)
    published = [event_id for ids_of_phase in confirmed.values() for event_id in ids_of_phase]
    assert published == [str(number) for number in range(len(published))], "every event confirmed, in order"
    on_kafka = ids(
        records(broker, "kubeflip.user.events", len(confirmed["kafka"]) + len(confirmed["kafka again"]))
    )
    stack.destroy(parallel=PARALLEL)

    assert sorted(on_kafka, key=int) == confirmed["kafka"] + confirmed["kafka again"]
    assert sorted(on_celery, key=int) == confirmed["celery"]
    assert sorted(on_kafka + on_celery, key=int) == published, "every event once, on one backend, none lost"


def test_the_local_stacks_manifests_apply_to_a_fresh_cluster(
    engine_project: EngineProject, broker: Broker, plane: ControlPlane, tmp_path: Path
) -> None:
    """`pulumi up` of the local stack renders manifests; with the namespace among them they apply."""
    project = engine_project
    local = yaml.safe_load((EXAMPLE / "Pulumi.local.yaml").read_text())
    settings = local["config"]["kafka-platform:settings"]
    settings["kafka"]["local"]["manifests_dir"] = str(tmp_path / "manifests")
    stack = project.stack("local", settings)
    stack.up(parallel=PARALLEL)
    documents = [
        document
        for path in sorted((tmp_path / "manifests").rglob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]
    kinds = [document["kind"] for document in documents]
    assert "Namespace" in kinds
    api = config.new_client_from_config(config_file=str(plane.kubeconfig))
    # Namespaces first, as `kubectl apply -f` of the directory orders them.
    for document in sorted(documents, key=lambda d: d["kind"] != "Namespace"):
        utils.create_from_dict(api, document)
    namespace = next(d["metadata"]["name"] for d in documents if d["kind"] == "Namespace")
    assert client.CoreV1Api(api).read_namespaced_config_map("api-kafka-env", namespace).data


# The last release whose program used Pulumi's default Kubernetes provider, with ConfigMaps and
# Secrets immutable and rollout patches that awaited ready pods.
PREVIOUS_RELEASE = "b009fa1"


def test_a_stack_deployed_by_the_previous_release_upgrades_in_place(
    k8s_stack: tuple[EngineProject, dict[str, Any], auto.Stack], plane: ControlPlane, tmp_path: Path
) -> None:
    """Moving every Kubernetes object from the default provider to the program's own (mutable)
    one replaces nothing: same objects, same uids, and the next preview is empty."""
    project, settings, stack = k8s_stack
    core, _ = apis(plane)
    try:
        core.create_namespace({"metadata": {"name": NAMESPACE}})
    except ApiException as error:  # the control plane is the module's: an earlier test made it
        assert error.status == 409
    # No rollouts: the previous release's patches awaited ready pods, which never come here.
    settings["kubernetes"]["deployments"] = {}
    project.write_settings(STACK, settings)
    deploy_with_release(project, STACK, PREVIOUS_RELEASE, tmp_path)
    config_maps, secrets = uids(core, "ConfigMap"), uids(core, "Secret")
    assert len(config_maps) == len(secrets) == 5

    # That release kept one resource per topic, ACL and SCRAM user: its state is migrated first.
    project.migrate_state(STACK)
    upgraded = stack.up(parallel=PARALLEL)
    summary = changes(upgraded)
    assert "replace" not in summary and "delete" not in summary, summary
    assert uids(core, "ConfigMap") == config_maps and uids(core, "Secret") == secrets
    stack.preview(expect_no_changes=True)
    stack.destroy(parallel=PARALLEL)
