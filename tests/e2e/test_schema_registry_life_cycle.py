"""The real engine registers a stack's subjects in a real Confluent-compatible registry (Apicurio,
tests/integration/schema_registry_server.py) through the `SchemaSubjects` dynamic provider,
on an existing-cluster stack: create, nothing to do after a refresh, a breaking version refused
naming the subject with the registry unchanged, a compatible one registered, destroy soft-deletes.
Each step asserts on the registry itself."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from pulumi import automation as auto

from infra.live.kafka_broker import Broker
from infra.live.schema_registry import RegistryLogin, SchemaRegistry
from tests.e2e.engine import PARALLEL, EngineProject, existing_cluster_settings

STACK = "e2e"


def mood(*extra: dict[str, Any]) -> str:
    fields = [{"name": "user_id", "type": "string"}, *extra]
    return json.dumps({"type": "record", "name": "MoodCreated", "namespace": "aura360", "fields": fields})


def test_subjects_through_the_real_engine(
    engine_project: EngineProject, broker: Broker, schema_registry: str
) -> None:
    project = engine_project
    domain = f"sr{uuid.uuid4().hex[:6]}"
    subject = f"{domain}.user.events-value"
    registry = SchemaRegistry(RegistryLogin(url=schema_registry))
    (project.root / "schemas").mkdir()
    (project.root / "schemas" / "mood.avsc").write_text(mood())

    def with_schema(topology: dict[str, Any]) -> None:
        topology["domain"] = domain
        topology["events"]["user.mood.created"]["schema"] = "schemas/mood.avsc"

    project.edit_topology(with_schema)
    settings = existing_cluster_settings(broker, schemas={"registry": {"url": schema_registry}})
    stack = project.stack(STACK, settings)

    stack.up(parallel=PARALLEL)
    latest = registry.latest(subject)
    assert latest is not None and latest.version == 1
    assert json.loads(latest.schema) == json.loads(mood())
    assert registry.compatibility(subject) == "BACKWARD"
    assert stack.outputs()["schema_subjects"].value == [subject]
    stack.preview(expect_no_changes=True)
    stack.preview(expect_no_changes=True, refresh=True)

    # A field without a default breaks BACKWARD: refused naming the subject, nothing registered.
    (project.root / "schemas" / "mood.avsc").write_text(mood({"name": "score", "type": "int"}))
    with pytest.raises(auto.CommandError, match=rf"subject '{subject}'.*compatibility level BACKWARD"):
        stack.up(parallel=PARALLEL)
    latest = registry.latest(subject)
    assert latest is not None and latest.version == 1

    (project.root / "schemas" / "mood.avsc").write_text(mood({"name": "score", "type": "int", "default": 0}))
    stack.up(parallel=PARALLEL)
    latest = registry.latest(subject)
    assert latest is not None and latest.version == 2

    stack.destroy(parallel=PARALLEL)
    assert subject not in registry.subjects() and subject in registry.subjects(deleted=True)
