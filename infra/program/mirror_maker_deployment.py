"""MirrorMaker 2 where the services run (a migrating stack with Kubernetes): its properties in a
ConfigMap, the two clusters' passwords in a Secret (read through `${env:...}`), and a one-replica
Deployment of the Apache Kafka image in dedicated mode, rolled when either changes."""

from __future__ import annotations

import hashlib

import pulumi
import pulumi_kubernetes as k8s

from infra.plan.migration import MIRROR_SOURCE_PASSWORD_ENV, MIRROR_TARGET_PASSWORD_ENV
from infra.plan.model import Plan
from infra.program.cluster_access import ClusterAccess
from infra.program.kubernetes_env import CHECKSUM_ANNOTATION, MANAGED_BY
from infra.render.mirror_maker import mirror_maker_properties

CONFIG_DIRECTORY = "/etc/mirror-maker"
PROPERTIES_FILE = "mm2.properties"
COMMAND = ["/opt/kafka/bin/connect-mirror-maker.sh", f"{CONFIG_DIRECTORY}/{PROPERTIES_FILE}"]


def mirror_maker_name(plan: Plan) -> str:
    return f"{plan.domain}-mirror-maker"


class MirrorMakerDeployment(pulumi.ComponentResource):
    config_map: k8s.core.v1.ConfigMap
    secret: k8s.core.v1.Secret
    deployment: k8s.apps.v1.Deployment

    def __init__(
        self,
        plan: Plan,
        target: ClusterAccess,
        source: ClusterAccess,
        namespace: pulumi.Input[str],
        *,
        wait_seconds: int | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kafka-platform:kubernetes:MirrorMaker", "mirror-maker", None, opts)
        migration = plan.migration
        if migration is None:
            raise ValueError(f"stack '{plan.stack}' has no settings.migration")
        child = pulumi.ResourceOptions(parent=self)
        name = mirror_maker_name(plan)
        labels = {**MANAGED_BY, "app.kubernetes.io/name": name}
        # On Confluent Cloud the mirror logs in with its API key's id, known only after deployment.
        username = target.mirror.username if plan.cluster.provider == "confluent" and target.mirror else None
        properties = pulumi.Output.all(target.bootstrap_servers, username).apply(
            lambda parts: mirror_maker_properties(plan, target_bootstrap=parts[0], target_username=parts[1])
        )
        self.config_map = k8s.core.v1.ConfigMap(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels=labels),
            data={PROPERTIES_FILE: properties},
            opts=child,
        )
        passwords: dict[str, pulumi.Input[str]] = {}
        versions: list[pulumi.Input[str]] = []
        for env, access in ((MIRROR_SOURCE_PASSWORD_ENV, source), (MIRROR_TARGET_PASSWORD_ENV, target)):
            if access.mirror is not None:
                passwords[env] = access.mirror.password
                versions.append(access.mirror.version)
        secret_name = f"{name}-credentials"
        self.secret = k8s.core.v1.Secret(
            secret_name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=secret_name, namespace=namespace, labels=labels),
            type="Opaque",
            string_data=passwords,
            opts=child,
        )
        # The properties and which credentials (never their values): a change restarts the pod.
        checksum = pulumi.Output.all(properties, *versions).apply(
            lambda parts: hashlib.sha256("\n".join(map(str, parts)).encode()).hexdigest()
        )
        # As for the services' rollouts (kubernetes.rollout_wait): by default `up` does not wait
        # for the pod, so a cluster that cannot run it yet never blocks the rest of the stack.
        annotations = {"pulumi.com/skipAwait": "true"} if wait_seconds is None else {}
        self.deployment = k8s.apps.v1.Deployment(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=name, namespace=namespace, labels=labels, annotations=annotations
            ),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                # One worker: a second would only rebalance the same tasks.
                replicas=1,
                # The old pod stops before the new one starts: two dedicated-mode workers have no
                # REST endpoint to forward task configs to each other (KIP-710 not enabled), and
                # overlapping they can leave the tasks unassigned or both copying.
                strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app.kubernetes.io/name": name}),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=labels, annotations={CHECKSUM_ANNOTATION: checksum}
                    ),
                    spec=k8s.core.v1.PodSpecArgs(
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="mirror-maker",
                                image=migration.image,
                                command=COMMAND,
                                env_from=[
                                    k8s.core.v1.EnvFromSourceArgs(
                                        secret_ref=k8s.core.v1.SecretEnvSourceArgs(name=secret_name)
                                    )
                                ],
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(
                                        name="config", mount_path=CONFIG_DIRECTORY, read_only=True
                                    )
                                ],
                            )
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="config",
                                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=name),
                            )
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.config_map, self.secret],
                custom_timeouts=None
                if wait_seconds is None
                else pulumi.CustomTimeouts(create=f"{wait_seconds}s", update=f"{wait_seconds}s"),
            ),
        )
        self.register_outputs({"deployment": name})
