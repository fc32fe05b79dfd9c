"""Human retention periods (``7d``, ``12h``, ``infinite``) to Kafka milliseconds."""

from __future__ import annotations

import re

INFINITE_MS = -1

_UNIT_MS = {
    "ms": 1,
    "s": 1_000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
}
_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d|w)\s*$")


def parse_retention_ms(value: object) -> int:
    """Return milliseconds; ``infinite`` (or ``-1``) means no time limit.

    Raises ValueError with a message meant for the user.
    """
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 7d, 12h, 30m or 'infinite'")
    if isinstance(value, int):
        if value == INFINITE_MS:
            return INFINITE_MS
        if value < 0:
            raise ValueError("must not be negative (use 'infinite' to keep data forever)")
        return value
    if isinstance(value, str):
        if value.strip().lower() in {"infinite", "forever", "-1"}:
            return INFINITE_MS
        match = _DURATION.match(value)
        if match:
            return int(match.group(1)) * _UNIT_MS[match.group(2)]
        if value.strip().startswith("-"):
            raise ValueError(f"'{value}' is negative; use 'infinite' to keep data forever")
    raise ValueError(
        f"'{value}' is not a duration: use a whole number with a unit "
        "(ms, s, m, h, d, w), e.g. 7d, or 'infinite'"
    )


def format_retention(milliseconds: int) -> str:
    """The shortest exact human form: 604800000 -> ``1w``, 86400000 -> ``1d``, -1 -> ``infinite``."""
    if milliseconds == INFINITE_MS:
        return "infinite"
    if milliseconds == 0:
        return "0ms"
    for unit, size in sorted(_UNIT_MS.items(), key=lambda item: -item[1]):
        if milliseconds % size == 0:
            return f"{milliseconds // size}{unit}"
    return f"{milliseconds}ms"
