"""Turn pydantic's validation errors into user-facing problems with key paths."""

from __future__ import annotations

import copy
import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from infra.model.errors import ConfigError, KeyPath, Problem

ModelT = TypeVar("ModelT", bound=BaseModel)


def validate_model(model: type[ModelT], data: Any, file: str, prefix: KeyPath = ()) -> ModelT:
    """Validate ``data`` against ``model``; every error becomes a Problem under ``prefix``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            Problem(file, (*prefix, *error["loc"]), _message(model, error))
            for error in exc.errors(include_url=False)
        ) from None


@dataclass(frozen=True)
class Checked(Generic[ModelT]):
    """A model validated as far as its input allows."""

    value: ModelT | None  # None: invalid even with its unknown keys set aside
    problems: list[Problem]
    # The unknown-key problems whose keys were left out so the rest could be validated (and
    # checked further, see errors.without_follow_ons).
    set_aside: list[Problem]


def validate_setting_aside(
    model: type[ModelT], data: Any, file: str, prefix: KeyPath = ()
) -> Checked[ModelT]:
    """Validate ``data``; when unknown keys are its only problems, validate it again without
    them, so the checks that need the model can still report theirs in the same run. Any other
    problem (a wrong type, a missing key) leaves no model: what it would hold is not known."""
    try:
        return Checked(model.model_validate(data), [], [])
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    problems = [Problem(file, (*prefix, *error["loc"]), _message(model, error)) for error in errors]
    if any(error["type"] != "extra_forbidden" for error in errors):
        return Checked(None, problems, [])
    trimmed = copy.deepcopy(data)
    if not all(_remove(trimmed, tuple(error["loc"])) for error in errors):
        return Checked(None, problems, [])
    try:
        return Checked(model.model_validate(trimmed), problems, problems)
    except ValidationError:
        return Checked(None, problems, [])


def _remove(data: Any, loc: tuple[Any, ...]) -> bool:
    """Delete the key at ``loc``; False when ``loc`` does not lead to one."""
    node = data
    for part in loc[:-1]:
        in_mapping = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_mapping or in_list):
            return False
        node = node[part]
    if isinstance(node, dict) and loc and loc[-1] in node:
        del node[loc[-1]]
        return True
    return False


def _message(model: type[BaseModel], error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    loc = tuple(error["loc"])
    given = error.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        message = "unknown key"
        if allowed:
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            if close:
                message += f" (did you mean '{close[0]}'?)"
            message += f"; allowed keys: {', '.join(sorted(allowed))}"
        return message
    if kind == "missing":
        return "required key is missing"
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        symbol = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[
            kind
        ]
        bound = next(iter(ctx.values()))
        return f"must be {symbol} {bound} (got {given!r})"
    if kind in {"literal_error", "enum"}:
        return f"{given!r} is not allowed; use one of {ctx.get('expected')}"
    if kind in {"int_parsing", "int_type", "int_from_float"}:
        return f"must be a whole number (got {given!r})"
    if kind in {"bool_parsing", "bool_type"}:
        return f"must be true or false (got {given!r})"
    if kind in {"string_type"}:
        return f"must be a string (got {given!r})"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return f"must be a mapping of keys to values (got {type(given).__name__})"
    if kind in {"list_type"}:
        return f"must be a list (got {type(given).__name__})"
    if kind in {"too_short"}:
        return f"must have at least {ctx.get('min_length')} item(s)"
    message = str(error["msg"])
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model found by walking ``loc`` from the root model."""
    current: Any = model
    for part in loc:
        current = _unwrap_optional(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        elif typing.get_origin(current) is list:
            current = typing.get_args(current)[0]
        else:
            return []
    current = _unwrap_optional(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return _unwrap_optional(members[0])
    if origin is typing.Annotated:
        return _unwrap_optional(typing.get_args(annotation)[0])
    return annotation
