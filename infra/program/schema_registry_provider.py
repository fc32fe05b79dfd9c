"""The Pulumi dynamic provider behind `SchemaSubjects` (infra/program/schema_registration.py): a
stack's Schema Registry subjects, their compatibility levels and schema versions, applied through
the one registry core (`infra.live.schema_registry`).

Like `admin_api_provider`, it runs in the engine's python plugin, which loads it by reference
from every deployed stack's state: this module's path and the class name are part of the state's
format. The registry password is read from the stack's configuration (`configure`), never from
the state.

What the stack owns is what its state says it registered, plus what `settings.adopt.subjects`
names; the provider never changes or deletes anything else:
- a subject that exists in the registry and is not owned is refused, naming it, before anything
  changes;
- each subject gets its level first, then its schema as the next version (the registry answers
  an unchanged schema with the version it has); a version the level refuses is an error naming
  the subject and the level, and the subject's own level as read before is put back (removed
  where it had none, so the registry's default applies again), whatever the stack's state knew;
- `create` soft-deletes again the subjects it registered when it fails half-way;
- a subject leaving the plan is soft-deleted (its versions stay readable by id), except in a
  protected stack, which releases it and leaves it in the registry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi.dynamic import (
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from infra.live.schema_registry import RegistryLogin, SchemaRegistry
from infra.program.dynamic_inputs import changed

SubjectSpec = dict[str, str]  # {"schema": text, "compatibility": level}

__all__ = ["SubjectsProvider", "SubjectsRefused"]


class SubjectsRefused(Exception):
    """A change the provider will not make, raised before it changes anything."""


def registry_login(props: Mapping[str, Any], config: Any | None) -> RegistryLogin:
    """The registry's URL and user from the inputs; the password from the stack's config key
    the inputs name."""
    registry = props["registry"]
    username = registry.get("username") or ""
    key = props.get("password_config")
    password = config.get(key) if key and config is not None else None
    if username and password is None:
        raise SubjectsRefused(
            f"no schema registry password: set it with `pulumi config set --secret {key} <password>`"
        )
    return RegistryLogin(url=str(registry["url"]), username=str(username), password=str(password or ""))


def foreign_subjects_refusal(subjects: Iterable[str], url: str) -> str:
    return (
        f"subject {', '.join(sorted(subjects))} already exists in schema registry {url} and is not this "
        "stack's; nothing was changed. Adopt it on purpose (settings.adopt.subjects): its level and next "
        "version are then the stack's"
    )


def same_schema(one: str, other: str) -> bool:
    """The same JSON, whatever the spelling (a registry may keep a canonical form)."""
    try:
        return bool(json.loads(one) == json.loads(other))
    except ValueError:
        return one == other


def converge_subjects(
    registry: SchemaRegistry,
    planned: Mapping[str, SubjectSpec],
    *,
    owned: Iterable[str],
) -> list[str]:
    """Give each planned subject its level and schema, in order; returns the subjects this call
    registered for the first time. Every refusal before any change."""
    owned = set(owned)
    existing = set(registry.subjects())
    foreign = sorted(name for name in planned if name in existing and name not in owned)
    if foreign:
        raise SubjectsRefused(foreign_subjects_refusal(foreign, registry.login.url))
    created: list[str] = []
    # Each subject's own level before this call, read from the registry rather than the state:
    # an adopted subject's level is not in the state.
    levels_before: dict[str, str | None] = {}
    try:
        for name, spec in planned.items():
            level = spec["compatibility"]
            before = levels_before[name] = registry.compatibility(name)
            if name not in existing:
                created.append(name)
            if before != level:
                registry.set_compatibility(name, level)
            try:
                registry.register(name, spec["schema"], level=level)
            except Exception:
                _restore_level(registry, name, before)
                raise
    except Exception:
        for name in created:
            registry.delete_subject(name)
            _restore_level(registry, name, levels_before[name])
        raise
    return created


def _restore_level(registry: SchemaRegistry, subject: str, level: str | None) -> None:
    """Give ``subject`` back the own level read before (None: none, the default applies)."""
    if level is None:
        registry.clear_compatibility(subject)
    elif level == "NONE":
        # Apicurio's ccompat API reads a subject without a level of its own as NONE, so NONE may
        # mean "none set". Cleared, a registry that reads the absence as NONE too cannot tell
        # them apart: it keeps the default (never a weaker level than the subject had); one that
        # reads it as no level (Confluent's) had an explicit NONE, set again.
        registry.clear_compatibility(subject)
        if registry.compatibility(subject) is None:
            registry.set_compatibility(subject, level)
    elif registry.compatibility(subject) != level:
        registry.set_compatibility(subject, level)


class SubjectsProvider(ResourceProvider):
    """All subjects of one stack in one registry."""

    serialize_as_secret_always = False
    _config: Any = None
    # `adopt` says what may happen, not what the registry should hold.
    COMPARED = ("subjects", "registry", "removal", "password_config")

    def configure(self, req: ConfigureRequest) -> None:
        self._config = req.config

    def _registry(self, props: Mapping[str, Any]) -> SchemaRegistry:
        return SchemaRegistry(registry_login(props, self._config))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(
            changes=changed(olds, news, self.COMPARED), replaces=[], delete_before_replace=False
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        registry = self._registry(props)
        converge_subjects(registry, props["subjects"], owned=props.get("adopt") or ())
        return CreateResult(id_="subjects", outs=_outputs(props))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        registry = self._registry(news)
        # A stack moved to another registry owns nothing there yet.
        mine: Mapping[str, SubjectSpec] = (
            olds["subjects"] if olds["registry"]["url"] == news["registry"]["url"] else {}
        )
        planned: Mapping[str, SubjectSpec] = news["subjects"]
        converge_subjects(registry, planned, owned=set(mine) | set(news.get("adopt") or ()))
        if news["removal"] == "delete":
            for name in sorted(set(mine) - set(planned)):
                registry.delete_subject(name)
        return UpdateResult(outs=_outputs(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        if props.get("removal") != "delete":
            return
        registry = self._registry(props)
        for name in props["subjects"]:
            registry.delete_subject(name)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """What of the state is still registered: each subject's latest schema and own level."""
        registry = self._registry(props)
        live: dict[str, SubjectSpec] = {}
        for name in props["subjects"]:
            latest = registry.latest(name)
            if latest is not None:
                mine = props["subjects"][name]["schema"]
                # A registry may keep the schema in another (canonical) spelling of the same JSON.
                schema = mine if same_schema(latest.schema, mine) else latest.schema
                live[name] = {"schema": schema, "compatibility": registry.compatibility(name) or ""}
        return ReadResult(id_=id_, outs={**props, "subjects": live})


def _outputs(props: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in props.items() if key != "__provider"}
