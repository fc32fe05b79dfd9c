"""The documented `pulumi install` / `pulumi preview` path from a fresh clone.

Pulumi's program directory is `main:`, or the project root without it (ours); its Python
language host installs dependencies with `python -m pip install -r requirements.txt` run *in the
program directory*, into the virtualenv named relative to the project root, and does nothing
when the file is missing (pulumi/pulumi sdk/python/toolchain/pip.go). The engine also starts
its plugins in the program directory, and the dynamic providers' plugin resolves `virtualenv`
against it (tests/e2e/test_official_cli_path.py runs that plugin).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

PIP_DRY_RUN = (sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--quiet")


def test_pulumi_install_installs_the_project_from_the_program_directory(
    repo_dir: Path, tmp_path: Path
) -> None:
    project = yaml.safe_load((repo_dir / "Pulumi.yaml").read_text())
    program_dir = repo_dir / project.get("main", ".")
    assert program_dir.resolve() == repo_dir.resolve(), "plugins and the language host must see one .venv"
    assert project["runtime"]["options"]["virtualenv"] == ".venv", "the venv `make` creates at the root"
    report = tmp_path / "report.json"
    result = subprocess.run(
        [*PIP_DRY_RUN, "--report", str(report), "-r", "requirements.txt"],
        cwd=program_dir,  # what the language host does
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    installs = {
        item["metadata"]["name"]: item["download_info"]["url"]
        for item in json.loads(report.read_text())["install"]
    }
    assert installs == {"kafka-platform": repo_dir.resolve().as_uri()}
