"""The SDK's per-registration debug lines stay off the engine's wire; every other line reaches it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pulumi
import pulumi.log
import pytest

from infra.program.sdk_debug_logs import KEEP_ENV, REGISTRATION_PREFIXES, mute_registration_debug_logs


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def engine_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What the engine receives as log lines, with the SDK's own `debug` restored for the test
    (other tests in this process ran the program, which mutes it for good)."""
    sdk_debug = pulumi.log.debug
    while hasattr(sdk_debug, "__wrapped__"):
        sdk_debug = sdk_debug.__wrapped__
    monkeypatch.setattr(pulumi.log, "debug", sdk_debug)
    monkeypatch.delenv(KEEP_ENV, raising=False)
    handler = _Lines()
    logger = logging.getLogger("tests.sdk_debug_logs")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)


def _register_two_resources() -> None:
    """A preview of a stack with two resources; the engine's log is the fixture's logger."""
    logger = logging.getLogger("tests.sdk_debug_logs")
    pulumi.runtime.set_mocks(_Mocks(), project="kafka-platform", stack="dev", preview=True, logger=logger)

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        pulumi.log.debug("platform: planning 2 resources")
        first = pulumi.CustomResource("test:index:Thing", "first", {"size": 1})
        second = pulumi.CustomResource("test:index:Thing", "second", {"size": 2})
        return pulumi.Output.all(first.urn, second.urn)

    program()


def _registration_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith(REGISTRATION_PREFIXES)]


def test_registration_lines_are_dropped_and_other_debug_lines_pass(engine_log: list[str]) -> None:
    mute_registration_debug_logs()
    _register_two_resources()
    assert _registration_lines(engine_log) == []
    assert "platform: planning 2 resources" in engine_log


def test_the_sdk_sends_them_unless_muted_and_the_env_var_keeps_them(
    engine_log: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEEP_ENV, "1")
    mute_registration_debug_logs()
    _register_two_resources()
    sent = _registration_lines(engine_log)
    # If the SDK stops sending these, the module can go.
    for prefix in REGISTRATION_PREFIXES:
        assert any(line.startswith(prefix) for line in sent), (prefix, sent)
    assert len([line for line in sent if "ty=test:index:Thing" in line]) == 6, sent


def test_muting_twice_wraps_once(engine_log: list[str]) -> None:
    sdk_debug = pulumi.log.debug
    mute_registration_debug_logs()
    mute_registration_debug_logs()
    assert pulumi.log.debug.__wrapped__ is sdk_debug  # type: ignore[attr-defined]
    _register_two_resources()
    assert engine_log.count("platform: planning 2 resources") == 1
