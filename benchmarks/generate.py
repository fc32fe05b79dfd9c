"""A large, realistic topology: services owning areas of topics and consuming a neighbour's."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent


def large_topology(topics: int = 1000, services: int = 100) -> dict[str, Any]:
    per_service = topics // services
    topic_map: dict[str, Any] = {}
    service_map: dict[str, Any] = {}
    for index in range(services):
        area = f"area{index:03d}"
        owned = [f"{area}.stream{n:02d}" for n in range(per_service)]
        for key in owned:
            topic_map[key] = {"partitions": 6, "retention": "7d", "key": "entity_id"}
        neighbour = f"area{(index + 1) % services:03d}"
        service_map[f"svc{index:03d}"] = {
            "produces": owned,
            "consumes": [f"{neighbour}.stream{n:02d}" for n in range(per_service)],
            "idempotent": index % 2 == 0,
        }
    events = {
        f"{area}.changed": {"topic": f"{area}.stream00", "transport": "kafka", "key": "entity:{entity_id}"}
        for area in (f"area{index:03d}" for index in range(services))
    }
    return {"domain": "bench", "topics": topic_map, "services": service_map, "events": events}


# The literal plan of 1,000 topics is over a standard Confluent cluster's 1,000 ACLs, so validate
# refuses it on the repository's prod stack; timings take it as on a cluster with a raised limit.
RAISED_ACL_LIMIT: dict[str, Any] = {"mode": "literal", "limit": 10_000}


def write_project(
    directory: Path, topics: int = 1000, services: int = 100, acls: dict[str, Any] | None = None
) -> Path:
    """The repository's stack files with a generated topology, in ``directory``; ``acls``: the
    prod stacks' `acls` settings (default: literal with a raised limit)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", "Pulumi.local.yaml"):
        shutil.copy(REPO / name, directory / name)
    shutil.copy(REPO / "examples" / "Pulumi.prod-msk.yaml", directory / "Pulumi.prod-msk.yaml")
    for stack in ("prod", "prod-msk"):
        path = directory / f"Pulumi.{stack}.yaml"
        document = yaml.safe_load(path.read_text())
        settings = document["config"]["kafka-platform:settings"]
        settings["topics"].pop("overrides", None)
        settings["kubernetes"]["deployments"] = {}
        settings["acls"] = RAISED_ACL_LIMIT if acls is None else acls
        path.write_text(yaml.safe_dump(document, sort_keys=False))
    (directory / "topology.yaml").write_text(
        yaml.safe_dump(large_topology(topics, services), sort_keys=False)
    )
    return directory
