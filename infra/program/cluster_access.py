"""What every cluster component hands the Kubernetes side: endpoints and per-service credentials."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from infra.plan.model import BOOTSTRAP_TOKEN, REGISTRY_ENDPOINT_TOKEN


@dataclass(frozen=True)
class ServiceCredentials:
    """SASL identity of one service; the password is always a Pulumi secret output."""

    username: pulumi.Output[str]
    password: pulumi.Output[str]
    principal_id: pulumi.Output[str]
    # Changes whenever the credential does, without revealing it (an API key id, a secret
    # version id, a rotation generation): it goes into the rollout checksum, never the password.
    version: pulumi.Output[str]


@dataclass(frozen=True)
class ClusterAccess:
    bootstrap_servers: pulumi.Output[str]
    cluster_id: pulumi.Output[str]
    credentials: dict[str, ServiceCredentials]
    # Extra stack outputs a provider wants published (e.g. what PR stacks reuse).
    exports: dict[str, pulumi.Input[object]] = field(default_factory=dict)
    # Confluent Cloud: the environment's Schema Registry endpoint (for REGISTRY_ENDPOINT_TOKEN),
    # and per service what its Secret carries of its own registry key, by env var.
    registry_endpoint: pulumi.Output[str] | None = None
    registry_logins: dict[str, dict[str, pulumi.Output[str]]] = field(default_factory=dict)
    # A migrating stack: MirrorMaker 2's login on this cluster (None: none needed, e.g. PLAINTEXT).
    mirror: ServiceCredentials | None = None

    def env_value(self, value: str) -> pulumi.Input[str]:
        """A plan env value with the cluster's real endpoints in place of their tokens."""
        if value == BOOTSTRAP_TOKEN:
            return self.bootstrap_servers
        if value == REGISTRY_ENDPOINT_TOKEN:
            if self.registry_endpoint is None:
                raise ValueError("the plan names the Confluent Schema Registry and the cluster has none")
            return self.registry_endpoint
        return value
