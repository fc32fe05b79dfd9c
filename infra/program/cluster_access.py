"""What every cluster component hands the Kubernetes side: endpoints and per-service credentials."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi


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
    # A migrating stack: MirrorMaker 2's login on this cluster (None: none needed, e.g. PLAINTEXT).
    mirror: ServiceCredentials | None = None
