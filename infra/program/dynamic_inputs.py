"""What the dynamic providers share about their inputs (`admin_api_provider`,
`schema_registry_provider`): no pydantic and no program here, as their plugin imports it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# The engine's placeholder for a value not known until deployment (pulumi.runtime.rpc.UNKNOWN).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def unknown(value: Any) -> bool:
    """Whether the value, or anything in it, is not known until deployment."""
    if isinstance(value, Mapping):
        return any(unknown(item) for item in value.values())
    if isinstance(value, list):
        return any(unknown(item) for item in value)
    return bool(value == UNKNOWN)


def changed(olds: Mapping[str, Any], news: Mapping[str, Any], keys: Iterable[str]) -> bool:
    """Whether any of ``keys`` differs between the state and the new inputs, or is not known yet."""
    return any(unknown(news.get(key)) or olds.get(key) != news.get(key) for key in keys)
