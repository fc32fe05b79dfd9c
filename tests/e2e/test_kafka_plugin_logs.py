"""The `kafka` plugin built for the engine tests drops the upstream provider's [DEBUG] and [TRACE]
lines in every call and forwards its info, warnings and errors: its Go tests
(tools/pulumi-resource-kafka/main_test.go) run over the upstream provider's real resource map.

Whether a line a background wait loop writes slips past is a matter of timing, so no test counts
what a whole deployment prints."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import skip_unless_required
from tests.e2e.conftest import REQUIRE_ENGINE

PLUGIN = Path(__file__).parents[2] / "tools" / "pulumi-resource-kafka"


def test_the_plugin_forwards_no_debug_or_trace_lines_from_its_calls() -> None:
    go = shutil.which("go")
    if go is None:
        skip_unless_required("Go is not installed: the kafka plugin's tests need it", REQUIRE_ENGINE)
    ran = subprocess.run(
        [str(go), "test", "-count=1", "-v", "./..."],
        cwd=PLUGIN,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "--- PASS: TestEveryCallForwardsOnlyInfoWarningsAndErrors" in ran.stdout
