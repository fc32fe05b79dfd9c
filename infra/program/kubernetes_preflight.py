"""Before anything is registered, in preview and in `up`: the namespace a stack applies into
(unless it creates it) and every Deployment named for rollouts must exist. Otherwise `up` would
fail half way, after the Kafka side was applied: pulumi-kubernetes retries a missing namespace
for about a minute, and a rollout patch on a missing Deployment is refused only when applied
(a preview does not ask the API server about patches)."""

from __future__ import annotations

from typing import Any

import pulumi
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from infra.plan.model import Plan

NOT_FOUND = 404


def check_kubernetes_targets(plan: Plan) -> None:
    kubernetes = plan.kubernetes
    if kubernetes is None or kubernetes.render_to_directory is not None:
        return
    rollouts = {s.name: s.rollout_deployment for s in plan.services if s.rollout_deployment is not None}
    if kubernetes.create_namespace and not rollouts:
        return
    namespace = kubernetes.namespace
    problems = []
    try:
        core, apps = _clients()
        if not kubernetes.create_namespace and not _exists(lambda: core.read_namespace(namespace)):
            problems.append(
                f"namespace {namespace} does not exist: create it, or set kubernetes.create_namespace: true "
                "(the stack then owns it and deletes it with the stack)"
            )
        for service, deployment in sorted(rollouts.items()):
            if not _exists(lambda name=deployment: apps.read_namespaced_deployment(name, namespace)):
                problems.append(
                    f"kubernetes.deployments.{service}: Deployment {deployment} does not exist in namespace "
                    f"{namespace}: deploy it first, or remove it from kubernetes.deployments"
                )
    except (ApiException, HTTPError, config.ConfigException, OSError) as error:
        reason = getattr(error, "reason", None) or str(error)
        raise pulumi.RunError(
            f"stack {plan.stack}: cannot read the Kubernetes API to check namespace {namespace} and the "
            f"rollout Deployments: {reason}"
        ) from None
    if problems:
        raise pulumi.RunError(
            f"stack {plan.stack}: nothing was changed, because\n" + "\n".join(f"  {p}" for p in problems)
        )


def _exists(read: Any) -> bool:
    try:
        read()
    except ApiException as error:
        if error.status == NOT_FOUND:
            return False
        raise
    return True


def _clients() -> tuple[client.CoreV1Api, client.AppsV1Api]:
    """The cluster the provider talks to: `kubernetes:kubeconfig` (a path or the file's content)
    and `kubernetes:context` from the stack's config, else the ambient kubeconfig."""
    settings = pulumi.Config("kubernetes")
    kubeconfig, context = settings.get("kubeconfig"), settings.get("context")
    if kubeconfig is not None and "apiVersion" in kubeconfig:
        api = config.new_client_from_config_dict(yaml.safe_load(kubeconfig), context=context)
    else:
        api = config.new_client_from_config(config_file=kubeconfig, context=context)
    return client.CoreV1Api(api), client.AppsV1Api(api)
