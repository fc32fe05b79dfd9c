"""Build throw-away project directories from the repository's real files, with edits."""

from __future__ import annotations

import copy
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from infra.model.stacks import SETTINGS_KEY
from infra.plan.model import Plan
from infra.plan.resolve import load_plan

REPO = Path(__file__).resolve().parent.parent
# The AURA360 example the platform's own tests exercise. The root's topology.yaml and stack files
# start as a copy of it and become a team's own (`kafka-platform init`), so no test reads those.
EXAMPLE = REPO / "examples" / "aura360"
# Shaped like what `pulumi config set --secret` writes with a passphrase (base64 of plain words).
ENCRYPTED = "v1:c2FsdHNhbHRzYWx0:Y2lwaGVydGV4dGNpcGhlcnRleHQ="  # pragma: allowlist secret
EXISTING_CLUSTER_EXAMPLE = REPO / "examples" / "Pulumi.existing-cluster.yaml"


def with_admin_password(stack_file_text: str) -> str:
    """A stack file as `pulumi config set --secret kafka-platform:kafkaAdminPassword` leaves it."""
    secret = f"config:\n  kafka-platform:kafkaAdminPassword:\n    secure: {ENCRYPTED}\n"
    return re.sub(r"^config:\n", secret, stack_file_text, count=1, flags=re.MULTILINE)


def existing_cluster_stack_file() -> str:
    """The existing-cluster example as a user has it once they set the admin password."""
    return with_admin_password(EXISTING_CLUSTER_EXAMPLE.read_text())


def with_schema_registry_password(stack_file_text: str) -> str:
    """A stack file once `pulumi config set --secret kafka-platform:schemaRegistryPassword` ran."""
    secret = f"config:\n  kafka-platform:schemaRegistryPassword:\n    secure: {ENCRYPTED}\n"
    return re.sub(r"^config:\n", secret, stack_file_text, count=1, flags=re.MULTILINE)


# A migration's source: the cluster the services leave (settings.migration.source).
MIGRATION_SOURCE: dict[str, Any] = {
    "bootstrap_servers": ["old-kafka-0.old:9092"],
    "security_protocol": "SASL_PLAINTEXT",
    "sasl_mechanism": "SCRAM-SHA-512",
    "admin": {"username": "admin"},
}


def migrating_stack_file(services: dict[str, str], *, kubernetes: str | None = "aura360-move") -> str:
    """The existing-cluster example (the target) migrating from MIGRATION_SOURCE, with the admin
    passwords of both clusters set as ciphertext; ``services``: settings.migration.services."""
    document = yaml.safe_load(existing_cluster_stack_file())
    settings = document["config"][SETTINGS_KEY]
    settings["migration"] = {"source": copy.deepcopy(MIGRATION_SOURCE), "services": dict(services)}
    if kubernetes is not None:
        settings["kubernetes"] = {"namespace": kubernetes}
    document["config"]["kafka-platform:migrationSourceAdminPassword"] = {"secure": ENCRYPTED}
    return yaml.safe_dump(document, sort_keys=False)


def confluent_migrating_stack_file() -> str:
    """The Confluent Cloud dev example migrating from MIGRATION_SOURCE, nobody moved yet."""
    document = yaml.safe_load((EXAMPLE / "Pulumi.dev.yaml").read_text())
    document["config"][SETTINGS_KEY]["migration"] = {
        "source": copy.deepcopy(MIGRATION_SOURCE),
        "services": {},
    }
    document["config"]["kafka-platform:migrationSourceAdminPassword"] = {"secure": ENCRYPTED}
    return yaml.safe_dump(document, sort_keys=False)


STACK_FILES = ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", "Pulumi.local.yaml")

Edit = Callable[[dict[str, Any]], None]

# A Kafka Streams app and a Kafka Connect worker over the repository's topics.
STREAMS_AND_CONNECT: dict[str, Any] = {
    "counter": {
        "kind": "streams",
        "consumes": ["user.events"],
        "produces": ["context.aggregated"],
        "transactional": True,
    },
    "sink": {
        "kind": "connect",
        "consumes": ["guardian.requests"],  # a sink connector writes it to a file
        "produces": ["vectordb.ingest"],  # a source connector fills it from a file
    },
}


def add_streams_and_connect(topology: dict[str, Any]) -> None:
    topology["services"].update(copy.deepcopy(STREAMS_AND_CONNECT))


def repo_topology() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((EXAMPLE / "topology.yaml").read_text())
    return data


def repo_settings(stack: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((EXAMPLE / f"Pulumi.{stack}.yaml").read_text())
    settings: dict[str, Any] = data["config"][SETTINGS_KEY]
    return settings


class Project:
    """A copy of the example's topology and stack files, with the repository's Pulumi.yaml, in
    a temporary directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copy(REPO / "Pulumi.yaml", root / "Pulumi.yaml")
        for name in (*STACK_FILES, "topology.yaml"):
            if name != "Pulumi.yaml":
                shutil.copy(EXAMPLE / name, root / name)

    def edit_topology(self, edit: Edit) -> Project:
        data = (
            repo_topology()
            if not (self.root / "topology.yaml").exists()
            else yaml.safe_load((self.root / "topology.yaml").read_text())
        )
        edit(data)
        (self.root / "topology.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        return self

    def edit_settings(self, stack: str, edit: Edit) -> Project:
        path = self.root / f"Pulumi.{stack}.yaml"
        document = yaml.safe_load(path.read_text()) if path.exists() else {"config": {}}
        settings = copy.deepcopy(document["config"].get(SETTINGS_KEY, {}))
        edit(settings)
        document["config"][SETTINGS_KEY] = settings
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return self

    def write(self, name: str, text: str) -> Project:
        (self.root / name).write_text(text)
        return self

    def plan(self, stack: str) -> Plan:
        return load_plan(self.root, stack)
