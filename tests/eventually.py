"""Reads that follow a write to a broker: KRaft applies topic configs and ACLs a moment after the
controller commits them, so a test waits for what it expects, with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from confluent_kafka.admin import AclBinding, AdminClient, ConfigResource

from infra.live.cluster_admin import EVERY_ACL

T = TypeVar("T")


def eventually(read: Callable[[], T], accept: Callable[[T], bool], timeout: float = 20, what: str = "") -> T:
    """``read()`` until ``accept`` holds for its value, which is returned; fails with the last
    value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or 'condition'} not reached in {timeout}s; last read: {value!r}")
        time.sleep(0.2)


def topic_config(admin: AdminClient, topic: str) -> dict[str, str]:
    """Every config of one topic, as the broker reports it now."""
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = next(iter(admin.describe_configs([resource], request_timeout=15).values())).result()
    return {key: str(entry.value) for key, entry in entries.items()}


def wait_for_topic_config(admin: AdminClient, topic: str, expected: dict[str, str]) -> None:
    eventually(
        lambda: topic_config(admin, topic),
        lambda config: all(config.get(key) == value for key, value in expected.items()),
        what=f"{topic} configs {expected}",
    )


def wait_for_acls(
    admin: AdminClient, present: Iterable[AclBinding] = (), absent: Iterable[AclBinding] = ()
) -> None:
    """Until the broker reports every binding of ``present`` and none of ``absent``."""
    wanted, gone = {str(b) for b in present}, {str(b) for b in absent}
    eventually(
        lambda: {str(b) for b in admin.describe_acls(EVERY_ACL, request_timeout=15).result()},
        lambda live: wanted <= live and not gone & live,
        what=f"ACLs present {sorted(wanted)}, absent {sorted(gone)}",
    )
