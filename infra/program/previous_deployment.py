"""The outputs of this stack's last deployment, read before anything is registered.

`pulumi:pulumi:readStackOutputs` is the engine's built-in invoke behind StackReference. Called
through `pulumi.runtime.invoke` it returns synchronously, so the program can refuse an unsafe
change before the first resource registration. An error raised inside an `apply` would surface
only after every registration had gone to the engine, when creates and updates have already run.
On a stack's first deployment the outputs are empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime.sync_await import _sync_await

from infra.program.state_migration import MIGRATED_LAYOUT, STATE_LAYOUT, STATE_LAYOUT_OUTPUT

READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"

TOPIC_NAMES_OUTPUT = "topic_names"
TOPIC_PARTITIONS_OUTPUT = "topic_partitions"
TOPIC_FAMILIES_OUTPUT = "topic_families"  # name -> the group (`Topics`) that holds it
KAFKA_CLUSTER_ID_OUTPUT = "kafka_cluster_id"  # an existing cluster's id, as the preflight read it
SERVICES_OUTPUT = "services"
CLUSTER_ID_OUTPUT = "cluster_id"
CREDENTIAL_VERSIONS_OUTPUT = "credential_versions"
CREDENTIAL_GENERATIONS_OUTPUT = "credential_generations"
# The Schema Registry subjects the stack registered, and where (kafka and msk stacks).
SCHEMA_SUBJECTS_OUTPUT = "schema_subjects"
SCHEMA_REGISTRY_OUTPUT = "schema_registry"
# A migrating stack's mirror principal (settings.migration), so removing it can be guarded.
MIGRATION_MIRROR_OUTPUT = "migration_mirror"


@dataclass(frozen=True)
class PreviousDeployment:
    outputs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_this_stack(cls) -> PreviousDeployment:
        _wait_for_the_stack_registration()
        name = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
        result = pulumi.runtime.invoke(READ_STACK_OUTPUTS, {"name": name})
        outputs = (result.value or {}).get("outputs") or {}
        return cls(outputs=dict(outputs))

    @property
    def exists(self) -> bool:
        return bool(self.outputs)

    def names(self, output: str) -> list[str] | None:
        value = self.outputs.get(output)
        return [str(item) for item in value] if isinstance(value, list) else None

    def topic_partitions(self) -> dict[str, int]:
        value = self.outputs.get(TOPIC_PARTITIONS_OUTPUT)
        if not isinstance(value, dict):
            return {}
        # Numbers come back from the engine as floats.
        return {str(name): int(count) for name, count in value.items()}

    def topic_families(self) -> dict[str, str]:
        value = self.outputs.get(TOPIC_FAMILIES_OUTPUT)
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    def credential_versions(self) -> dict[str, str]:
        """Which credential (identity and version, never the secret) each service was deployed with."""
        value = self.outputs.get(CREDENTIAL_VERSIONS_OUTPUT)
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    def credential_generations(self) -> dict[str, Any] | None:
        """What the last deployment recorded about credential rotation (None before any)."""
        value = self.outputs.get(CREDENTIAL_GENERATIONS_OUTPUT)
        return dict(value) if isinstance(value, dict) else None

    def needs_state_migration(self) -> bool:
        layout = self.outputs.get(STATE_LAYOUT_OUTPUT)
        return self.names(TOPIC_NAMES_OUTPUT) is not None and layout not in (STATE_LAYOUT, MIGRATED_LAYOUT)

    def migrated_topics(self) -> list[str]:
        """The topics a just-migrated stack had: its next `up` takes them over as they are."""
        if self.outputs.get(STATE_LAYOUT_OUTPUT) != MIGRATED_LAYOUT:
            return []
        return self.names(TOPIC_NAMES_OUTPUT) or []

    def has_cluster(self) -> bool:
        return bool(self.outputs.get(CLUSTER_ID_OUTPUT))


def _wait_for_the_stack_registration() -> None:
    """Let the engine finish writing the checkpoint of the stack's own root resource.

    The program starts while that registration is in flight, and with a `file://` backend a read
    of the checkpoint can meet the write half-done: the file is replaced atomically, but gocloud's
    fileblob rewrites its `.attrs` sidecar in place, so the read fails with "failed to load
    checkpoint: EOF" (seen in the engine benchmark). The engine saves a step's checkpoint before it
    answers the registration (SnapshotManager.mutate waits for the save), and the program registers
    nothing else before this read. A failed invoke cannot simply be retried: the SDK records it and
    fails the program once it ends.
    """
    root = pulumi.runtime.get_root_resource()
    if root is not None:
        _sync_await(root.urn.future())
