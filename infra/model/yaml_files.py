"""Strict YAML loading: duplicate keys are errors, not silently last-one-wins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from infra.model.errors import ConfigError, KeyPath, Problem

try:
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # PyYAML built without libyaml
    _Loader = yaml.SafeLoader


def _duplicate_keys(node: yaml.Node, path: KeyPath, file: str) -> list[Problem]:
    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in first_line:
                problems.append(
                    Problem(
                        file,
                        (*path, key),
                        f"duplicate key (line {line}; first defined on line {first_line[key]})",
                    )
                )
            else:
                first_line[key] = line
            problems.extend(_duplicate_keys(value_node, (*path, key), file))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems.extend(_duplicate_keys(item, (*path, index), file))
    return problems


def parse_yaml(text: str, file: str) -> Any:
    """Parse one YAML document; syntax errors and duplicate keys raise ConfigError."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        duplicates = _duplicate_keys(node, (), file)
        if duplicates:
            raise ConfigError(duplicates)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise ConfigError([Problem(file, (), f"invalid YAML at {where}: {exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(file, (), f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()


def load_yaml_file(path: Path, display_name: str | None = None) -> Any:
    name = display_name or path.name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(name, (), "file not found")]) from None
    return parse_yaml(text, name)
