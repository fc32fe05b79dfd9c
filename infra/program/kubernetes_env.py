"""Per service: a ConfigMap with the plan's env flags, a Secret with its SASL credentials,
and a checksum annotation on its Deployment so a flag change rolls the pods."""

from __future__ import annotations

import hashlib
import json

import pulumi
import pulumi_kubernetes as k8s

from infra.plan import BOOTSTRAP_TOKEN, SASL_PASSWORD_ENV, SASL_USERNAME_ENV, Plan, ServicePlan
from infra.program.cluster_access import ClusterAccess

CHECKSUM_ANNOTATION = "kafka-platform/config-checksum"
MANAGED_BY = {"app.kubernetes.io/managed-by": "kafka-platform"}


def config_checksum(data: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class ServiceKafkaEnv(pulumi.ComponentResource):
    """The Kubernetes objects one service reads its Kafka settings from."""

    config_map: k8s.core.v1.ConfigMap
    secret: k8s.core.v1.Secret | None

    def __init__(
        self,
        service: ServicePlan,
        plan: Plan,
        access: ClusterAccess,
        namespace: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kafka-platform:kubernetes:ServiceKafkaEnv", service.name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {**MANAGED_BY, "app.kubernetes.io/name": service.deployment}
        data = access.bootstrap_servers.apply(
            lambda bootstrap: {
                key: bootstrap if value == BOOTSTRAP_TOKEN else value for key, value in service.env.items()
            }
        )
        self.config_map = k8s.core.v1.ConfigMap(
            service.config_map,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=service.config_map, namespace=namespace, labels=labels),
            data=data,
            opts=child,
        )
        self.secret = None
        if service.secret is not None:
            credentials = access.credentials[service.name]
            self.secret = k8s.core.v1.Secret(
                service.secret,
                metadata=k8s.meta.v1.ObjectMetaArgs(name=service.secret, namespace=namespace, labels=labels),
                type="Opaque",
                string_data={
                    SASL_USERNAME_ENV: credentials.username,
                    SASL_PASSWORD_ENV: credentials.password,
                },
                opts=child,
            )
        if plan.kubernetes.restart_deployments:
            k8s.apps.v1.DeploymentPatch(
                f"{service.name}-rollout",
                metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                    name=service.deployment,
                    namespace=namespace,
                    annotations={"pulumi.com/patchForce": "true"},
                ),
                spec=k8s.apps.v1.DeploymentSpecPatchArgs(
                    template=k8s.core.v1.PodTemplateSpecPatchArgs(
                        metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                            annotations={CHECKSUM_ANNOTATION: data.apply(config_checksum)}
                        )
                    )
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.config_map]),
            )
        self.register_outputs({"config_map": self.config_map.metadata.name})


def kubernetes_provider(plan: Plan) -> k8s.Provider | None:
    """The local stack renders manifests to a directory; other stacks use the ambient kubeconfig."""
    if plan.kubernetes.render_to_directory is None:
        return None
    return k8s.Provider("render-manifests", render_yaml_to_directory=plan.kubernetes.render_to_directory)


def namespace_for(plan: Plan, provider: k8s.Provider | None) -> pulumi.Input[str]:
    if not plan.kubernetes.create_namespace:
        return plan.kubernetes.namespace
    namespace = k8s.core.v1.Namespace(
        "namespace",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=plan.kubernetes.namespace, labels=MANAGED_BY),
        opts=pulumi.ResourceOptions(provider=provider),
    )
    return namespace.metadata.apply(lambda metadata: metadata.name or plan.kubernetes.namespace)
