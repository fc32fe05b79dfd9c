"""Keeps the Python SDK's per-registration debug lines off the wire.

The SDK sends four debug lines for every resource it registers ("registering resource",
"beginning rpc register resource", "resource registration prepared", "resource registration
successful"), each a blocking Log call to the engine, which shows them only under `--debug`.
pulumi/pulumi#7292 put the SDK's other chatty debug lines behind
``settings.excessive_debug_output`` and left these: at 305 resources they are about 1,200 calls
and about 0.5 s of every preview (docs/performance.md).
`KAFKA_PLATFORM_SDK_DEBUG_LOGS=1` lets them through again.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import pulumi.log

KEEP_ENV = "KAFKA_PLATFORM_SDK_DEBUG_LOGS"
REGISTRATION_PREFIXES = (
    "registering resource: ",
    "beginning rpc register resource",
    "resource registration prepared: ",
    "resource registration successful: ",
)


def mute_registration_debug_logs() -> None:
    """Drops the registration lines from `pulumi.log.debug`; every other message passes.
    Safe to call more than once."""
    if os.environ.get(KEEP_ENV) == "1" or getattr(pulumi.log.debug, "_mutes_registration", False):
        return
    forward = pulumi.log.debug

    @functools.wraps(forward)
    def debug(msg: str, *args: Any, **kwargs: Any) -> None:
        if not msg.startswith(REGISTRATION_PREFIXES):
            forward(msg, *args, **kwargs)

    debug._mutes_registration = True  # type: ignore[attr-defined]
    pulumi.log.debug = debug
