"""Event schemas named in topology.yaml (`events.<name>.schema: schemas/<file>.avsc`): read and
parsed by Apache Avro's own library, so a schema the registry would refuse is refused here.

The files are read through a callable, so `diff` reads the base ref's with `git show` and
everything else reads the work tree's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import avro.errors
import avro.schema

from infra.model.errors import ProblemCollector
from infra.model.topology import Topology, key_template_fields

SCHEMA_SUFFIXES = {".avsc": "AVRO"}

ReadFile = Callable[[str], str | None]  # a project-relative path -> its text, None when missing


@dataclass(frozen=True)
class EventSchema:
    event: str
    path: str  # as topology.yaml names it
    format: str  # AVRO
    text: str  # the schema as JSON with sorted keys: what is compared and registered
    record_name: str  # the full name of its top-level type (record naming strategies)

    def parsed(self) -> avro.schema.Schema:
        return avro.schema.parse(self.text)


def files_in(project_dir: Path) -> ReadFile:
    def read(path: str) -> str | None:
        file = project_dir / path
        return file.read_text(encoding="utf-8") if file.is_file() else None

    return read


def load_event_schemas(
    topology: Topology, read: ReadFile, file: str = "topology.yaml"
) -> dict[str, EventSchema]:
    """Every event's schema, parsed. Raises ConfigError naming the event's key path for a file
    that is missing, of an unknown kind, or not a valid schema (with Avro's own reason)."""
    problems = ProblemCollector(file)
    schemas: dict[str, EventSchema] = {}
    for name, event in sorted(topology.events.items()):
        if event.schema_file is None:
            continue
        path = ("events", name, "schema")
        suffix = Path(event.schema_file).suffix
        if suffix not in SCHEMA_SUFFIXES:
            problems.add(path, f"'{event.schema_file}': schemas are Avro files (.avsc)")
            continue
        if Path(event.schema_file).is_absolute() or ".." in Path(event.schema_file).parts:
            problems.add(path, f"'{event.schema_file}': a path inside the project, relative to topology.yaml")
            continue
        text = read(event.schema_file)
        if text is None:
            problems.add(path, f"'{event.schema_file}' does not exist")
            continue
        try:
            schema = avro.schema.parse(text)
        except (avro.errors.AvroException, json.JSONDecodeError) as error:
            problems.add(path, f"'{event.schema_file}' is not a valid Avro schema: {error}")
            continue
        if not isinstance(schema, avro.schema.NamedSchema):
            problems.add(path, f"'{event.schema_file}': an event's schema is a named type (a record)")
            continue
        if event.key is not None and isinstance(schema, avro.schema.RecordSchema):
            fields = {field.name for field in schema.fields}
            missing = [field for field in key_template_fields(event.key) if field not in fields]
            if missing:
                problems.add(
                    ("events", name, "key"),
                    f"key field(s) {', '.join(missing)} not in the fields of {schema.fullname} "
                    f"({event.schema_file})",
                )
        schemas[name] = EventSchema(
            event=name,
            path=event.schema_file,
            format=SCHEMA_SUFFIXES[suffix],
            text=json.dumps(schema.to_json(), sort_keys=True, separators=(",", ":")),
            record_name=schema.fullname,
        )
    problems.raise_if_any()
    return schemas
