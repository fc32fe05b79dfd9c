"""The official CLI path, as far as it can run here: the engine starts the dynamic providers'
plugin in the program directory with the runtime options of `Pulumi.yaml`, and that plugin is
the release's own script, which resolves a relative `virtualenv` against its working directory
(pulumi/pulumi sdk/python/dist/pulumi-resource-pulumi-python; #7061). The previous layout
(`main: infra/`) failed every MSK and existing-cluster user's first `pulumi preview` there."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from pulumi import automation as auto

from infra.live.kafka_broker import Broker
from tests.e2e.engine import (
    ENGINE_BIN,
    ENGINE_ROOT,
    PARALLEL,
    EngineProject,
    existing_cluster_settings,
    lay_out_clone,
)

# The last release whose Pulumi.yaml had `main: infra/`.
PREVIOUS_LAYOUT = "9c53d77"


def test_the_engines_python_scripts_are_the_releases_own(engine_ready: None) -> None:
    module = Path((ENGINE_ROOT / "sdk-module-dir").read_text().strip())
    version = subprocess.run(
        [str(ENGINE_BIN / "pulumi"), "version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert module.name == f"v3@{version}", "the scripts come from the SDK module of the CLI's own version"
    for installed, released in (
        ("pulumi-resource-pulumi-python", "python/dist/pulumi-resource-pulumi-python"),
        ("pulumi-language-python-exec", "python/cmd/pulumi-language-python-exec"),
    ):
        assert (ENGINE_BIN / installed).read_bytes() == (module / released).read_bytes(), installed


def test_the_previous_layout_fails_the_first_preview_as_it_did_for_users(
    engine_ready: None, broker: Broker, tmp_path: Path
) -> None:
    project = EngineProject(tmp_path / "clone", broker, release=PREVIOUS_LAYOUT)
    assert "main: infra/" in (project.root / "Pulumi.yaml").read_text()
    stack = project.stack("e2e-layout", existing_cluster_settings(broker))
    with pytest.raises(auto.CommandError) as failed:
        stack.preview(parallel=PARALLEL)
    # The plugin's working directory is the program directory, `infra/` of the clone.
    wrong = project.root / "infra" / ".venv"
    assert (
        f'The \'virtualenv\' option in Pulumi.yaml is set to "{wrong}", but "{wrong}" doesn\'t exist.'
        in str(failed.value)
    )

    # The project's own layout, in the same clone: the plugin finds the .venv at the root.
    shutil.rmtree(project.root / "infra")
    lay_out_clone(project.root)
    stack = project.stack("e2e-layout")
    stack.preview(parallel=PARALLEL)
