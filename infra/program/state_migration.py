"""Moving a stack's state from one resource per topic, ACL and SCRAM user (releases before the
grouped layout) to the grouped layout, without touching the cluster.

The per-object resources are forgotten (removed from the state, never deleted), and the stack's
outputs record the new layout; the next `pulumi up` then registers `Topics` and `ServiceAccess`,
whose creates take over the existing objects as they are (infra/program/admin_api_provider.py).
Pure: it edits the JSON of `pulumi stack export` and knows nothing of Pulumi's API.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass
from typing import Any

# The providers whose topics and ACLs are grouped (infra/program/kafka_admin.py).
GROUPED_PROVIDERS = ("kafka", "msk")
# How the Kafka objects of those stacks are kept in the state, recorded in the stack outputs.
# Stacks deployed before it was recorded hold one resource per topic, ACL and SCRAM user and
# must be migrated before the grouped program may run on them.
STATE_LAYOUT_OUTPUT = "kafka_state_layout"
STATE_LAYOUT = "grouped-v1"
# Recorded by the migration: the next `up` takes over every topic the stack had, even one that
# drifted from the plan, and records STATE_LAYOUT again.
MIGRATED_LAYOUT = "grouped-v1, migrated"
PER_OBJECT_TYPES = {
    "kafka:index/topic:Topic": "topics",
    "kafka:index/acl:Acl": "ACLs",
    "kafka:index/userScramCredential:UserScramCredential": "SCRAM users",
}
KAFKA_PROVIDER_TYPE = "pulumi:providers:kafka"
STACK_TYPE = "pulumi:pulumi:Stack"
# MSK's own bootstrap grants stay per resource, under the same names, in the grouped program.
KEPT_NAME_PREFIX = "admin-acl-"


@dataclass(frozen=True)
class Migration:
    deployment: dict[str, Any]
    forgotten: Counter[str]  # kind (topics, ACLs, SCRAM users, kafka providers) -> how many
    needed: bool  # False: the state is in the grouped layout already


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _forgettable(resource: dict[str, Any]) -> bool:
    return resource.get("type") in PER_OBJECT_TYPES and not _name(resource["urn"]).startswith(
        KEPT_NAME_PREFIX
    )


def migrate(deployment: dict[str, Any]) -> Migration:
    """The deployment without its per-object Kafka resources (and the `kafka` providers nothing
    uses any more), with every reference to them dropped and the layout recorded."""
    migrated = copy.deepcopy(deployment)
    resources: list[dict[str, Any]] = migrated.get("resources") or []
    forgotten: Counter[str] = Counter()
    gone = set()
    for resource in resources:
        if _forgettable(resource):
            gone.add(resource["urn"])
            forgotten[PER_OBJECT_TYPES[resource["type"]]] += 1
    kept = [resource for resource in resources if resource["urn"] not in gone]
    # A provider reference is "<provider urn>::<provider id>".
    used_providers = {
        resource["provider"].rsplit("::", 1)[0] for resource in kept if resource.get("provider")
    }
    for resource in kept:
        if resource.get("type") == KAFKA_PROVIDER_TYPE and gone and resource["urn"] not in used_providers:
            gone.add(resource["urn"])
            forgotten["kafka providers"] += 1
    kept = [resource for resource in kept if resource["urn"] not in gone]
    for resource in kept:
        _drop_references(resource, gone)
        if resource.get("type") == STACK_TYPE:
            outputs = resource.setdefault("outputs", {})
            if outputs.get(STATE_LAYOUT_OUTPUT) != STATE_LAYOUT:
                outputs[STATE_LAYOUT_OUTPUT] = MIGRATED_LAYOUT
    migrated["resources"] = kept
    return Migration(migrated, forgotten, needed=migrated != deployment)


def _drop_references(resource: dict[str, Any], gone: set[str]) -> None:
    if "dependencies" in resource:
        resource["dependencies"] = [urn for urn in resource["dependencies"] if urn not in gone]
    for key, urns in list((resource.get("propertyDependencies") or {}).items()):
        resource["propertyDependencies"][key] = [urn for urn in urns if urn not in gone]
    if resource.get("deletedWith") in gone:
        del resource["deletedWith"]
