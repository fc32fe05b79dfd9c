"""Which credential generations a stack keeps at a given moment.

Rotation is `settings.credentials.rotation.generation` going up. The deployment that first sees
the new generation creates it beside the current one and records until when the previous one
stays valid (the `credential_generations` stack output); every deployment after that keeps it
until then, and the first one past it revokes it. Pure: the program passes the clock and what
the last deployment recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Generations:
    current: int
    previous: int | None = None
    previous_until: datetime | None = None  # the previous one is revoked by the first deployment after this

    @property
    def live(self) -> list[int]:
        return [self.current] if self.previous is None else [self.previous, self.current]

    def to_output(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "previous": self.previous,
            "previous_until": self.previous_until.isoformat() if self.previous_until else None,
        }


def generations_now(
    wanted: int, overlap_ms: int, recorded: dict[str, Any] | None, now: datetime
) -> Generations:
    """``recorded``: the last deployment's `credential_generations` output (None: first deployment
    or one made before rotation existed, which ran generation 1)."""
    deployed = int(recorded["current"]) if recorded else 1
    if wanted != deployed:
        return Generations(wanted, deployed, now + timedelta(milliseconds=overlap_ms))
    previous = recorded.get("previous") if recorded else None
    until = recorded.get("previous_until") if recorded else None
    if previous is not None and until is not None and now < datetime.fromisoformat(str(until)):
        return Generations(wanted, int(previous), datetime.fromisoformat(str(until)))
    return Generations(wanted)
