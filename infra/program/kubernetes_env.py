"""Per service: a ConfigMap with the plan's env flags, a Secret with its SASL credentials, and,
only for Deployments the settings name, a checksum annotation that rolls the pods."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from infra.plan.model import (
    SASL_PASSWORD_ENV,
    SASL_USERNAME_ENV,
    KubernetesPlan,
    ServicePlan,
)
from infra.program.cluster_access import ClusterAccess

CHECKSUM_ANNOTATION = "kafka-platform/config-checksum"
MANAGED_BY = {"app.kubernetes.io/managed-by": "kafka-platform"}
# One server-side-apply field manager for every rollout patch, so a destroy and a new `up` do not
# leave the old (otherwise random) manager co-owning the checksum.
ROLLOUT_FIELD_MANAGER = "kafka-platform-rollout"


def config_checksum(env: dict[str, str], credential_version: str) -> str:
    """What the pods were started with: the env flags and which credential (never its secret)."""
    document = {"env": env, "credential": credential_version}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def service_env(service: ServicePlan, access: ClusterAccess) -> pulumi.Output[dict[str, str]]:
    """The service's env flags with the cluster's real endpoints."""
    return pulumi.Output.all(**{key: access.env_value(value) for key, value in service.env.items()}).apply(
        lambda env: {key: str(value) for key, value in env.items()}
    )


class ServiceKafkaEnv(pulumi.ComponentResource):
    """The Kubernetes objects one service reads its Kafka settings from."""

    config_map: k8s.core.v1.ConfigMap
    secret: k8s.core.v1.Secret | None
    rollout: k8s.apps.v1.DeploymentPatch | None

    def __init__(
        self,
        service: ServicePlan,
        access: ClusterAccess,
        namespace: pulumi.Input[str],
        secret_values: dict[str, pulumi.Output[str]] | None = None,
        *,
        rollout_wait_seconds: int | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kafka-platform:kubernetes:ServiceKafkaEnv", service.name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {**MANAGED_BY, "app.kubernetes.io/name": service.name}
        data = service_env(service, access)
        self.config_map = k8s.core.v1.ConfigMap(
            service.config_map,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=service.config_map, namespace=namespace, labels=labels),
            # Key by key, so that in a preview only the endpoints are unknown and the
            # policy pack can check every other value.
            data={key: access.env_value(value) for key, value in service.env.items()},
            opts=child,
        )
        self.secret = None
        credential_version: pulumi.Output[str] = pulumi.Output.from_input("")
        if service.secret is not None:
            string_data: dict[str, pulumi.Input[str]] = {
                key: value
                for key, value in (
                    (secret_values or {}) | access.registry_logins.get(service.name, {})
                ).items()
                if key in service.secret_env
            }
            credentials = access.credentials.get(service.name)
            if credentials is not None:
                credential_version = credentials.version
                string_data |= {
                    SASL_USERNAME_ENV: credentials.username,
                    SASL_PASSWORD_ENV: credentials.password,
                }
            self.secret = k8s.core.v1.Secret(
                service.secret,
                metadata=k8s.meta.v1.ObjectMetaArgs(name=service.secret, namespace=namespace, labels=labels),
                type="Opaque",
                string_data=string_data,
                opts=child,
            )
        self.rollout = None
        if service.rollout_deployment is not None:
            self.rollout = self._rollout(
                service, namespace, data, credential_version, wait_seconds=rollout_wait_seconds
            )
        self.register_outputs({"config_map": self.config_map.metadata.name})

    def _rollout(
        self,
        service: ServicePlan,
        namespace: pulumi.Input[str],
        data: pulumi.Output[dict[str, str]],
        credential_version: pulumi.Output[str],
        *,
        wait_seconds: int | None,
    ) -> k8s.apps.v1.DeploymentPatch:
        """Annotate the pod template of an existing Deployment so a change restarts its pods.

        pulumi-kubernetes applies a Patch with server-side apply, which would *create* a missing
        Deployment (and the API server rejects one without selector or containers), so only
        Deployments the settings name are patched. On destroy the provider would give up its
        field, which rolls the pods once more or fails on a deleted Deployment: the patch is
        retained instead.

        The provider would wait up to 10 minutes for the rollout to become ready, blocking (and
        then failing) an `up` during an outage or the emergency switch to Celery: by default the
        patch does not wait (`pulumi.com/skipAwait`); `kubernetes.rollout_wait` bounds a wait.
        """
        checksum = pulumi.Output.all(data, credential_version).apply(
            lambda values: config_checksum(values[0], values[1])
        )
        return k8s.apps.v1.DeploymentPatch(
            f"{service.name}-rollout",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                name=service.rollout_deployment,
                namespace=namespace,
                annotations=rollout_annotations(wait_seconds),
            ),
            spec=k8s.apps.v1.DeploymentSpecPatchArgs(
                template=k8s.core.v1.PodTemplateSpecPatchArgs(
                    metadata=k8s.meta.v1.ObjectMetaPatchArgs(annotations={CHECKSUM_ANNOTATION: checksum})
                )
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[r for r in (self.config_map, self.secret) if r is not None],
                retain_on_delete=True,
                custom_timeouts=None
                if wait_seconds is None
                else pulumi.CustomTimeouts(create=f"{wait_seconds}s", update=f"{wait_seconds}s"),
            ),
        )


def rollout_annotations(wait_seconds: int | None) -> dict[str, str]:
    annotations = {
        # Take the checksum back from any other manager that overwrote it.
        "pulumi.com/patchForce": "true",
        "pulumi.com/patchFieldManager": ROLLOUT_FIELD_MANAGER,
    }
    if wait_seconds is None:
        annotations["pulumi.com/skipAwait"] = "true"
    return annotations


def kubernetes_provider(kubernetes: KubernetesPlan, project_dir: Path) -> k8s.Provider:
    """The provider every Kubernetes object goes through. ConfigMaps and Secrets are updated in
    place (`enableConfigMapMutable`, `enableSecretMutable`): by default the provider replaces
    them, and their fixed names make it delete before it creates, so a pod starting in that gap
    fails. The local stack renders manifests to a directory; other stacks use the stack's
    `kubernetes:kubeconfig|context|cluster` config, else the ambient kubeconfig.

    Provider plugins run in the engine's program directory (`infra/`), so a relative directory
    would land there; it is resolved against the project directory instead.
    """
    if kubernetes.render_to_directory is not None:
        directory = (project_dir / kubernetes.render_to_directory).resolve()
        return k8s.Provider(
            "render-manifests",
            render_yaml_to_directory=str(directory),
            enable_config_map_mutable=True,
            enable_secret_mutable=True,
        )
    config = pulumi.Config("kubernetes")
    return k8s.Provider(
        "kubernetes",
        kubeconfig=config.get("kubeconfig"),
        context=config.get("context"),
        cluster=config.get("cluster"),
        enable_config_map_mutable=True,
        enable_secret_mutable=True,
    )


def namespace_for(kubernetes: KubernetesPlan, provider: k8s.Provider) -> pulumi.Input[str]:
    """The stack's namespace; created when the stack owns it, and always rendered with the local
    stack's manifests, which would not apply to a fresh cluster without it."""
    if not kubernetes.create_namespace and kubernetes.render_to_directory is None:
        return kubernetes.namespace
    namespace = k8s.core.v1.Namespace(
        "namespace",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=kubernetes.namespace, labels=MANAGED_BY),
        opts=pulumi.ResourceOptions(provider=provider),
    )
    return namespace.metadata.apply(lambda metadata: metadata.name or kubernetes.namespace)
