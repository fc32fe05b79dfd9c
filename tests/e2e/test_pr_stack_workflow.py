"""`pr-stack.yml`'s config step, run as written with the real CLI, on two fresh runners in a row.

A stack's config lives in Pulumi.<stack>.yaml on the runner that wrote it. `stack init
--copy-config-from dev` ran only when the stack was new, so the second push found no file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.e2e.engine import ENGINE_BIN
from tests.project_files import EXAMPLE, REPO

WORKFLOW = REPO / ".github" / "workflows" / "pr-stack.yml"
STEP = "Write the PR stack's config from dev's"


def step_script(job: str) -> str:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"][job]["steps"]
    script: str = next(step["run"] for step in steps if step.get("name") == STEP)
    return script


def test_every_push_finds_the_pr_stacks_config(engine_ready: None, tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(REPO / "Pulumi.yaml", checkout / "Pulumi.yaml")
    for name in ("Pulumi.dev.yaml", "topology.yaml"):
        shutil.copy(EXAMPLE / name, checkout / name)
    env = {
        **os.environ,
        "PATH": f"{ENGINE_BIN}{os.pathsep}{os.environ['PATH']}",
        "PULUMI_HOME": str(tmp_path / "home"),
        "PULUMI_BACKEND_URL": (tmp_path / "state").as_uri(),
        "PULUMI_CONFIG_PASSPHRASE": "pr-stack-test",  # pragma: allowlist secret
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "STACK": "pr-7",
    }
    (tmp_path / "state").mkdir()

    def pulumi(*args: str) -> str:
        done = subprocess.run(
            ["pulumi", *args, "--non-interactive"],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    pulumi("stack", "init", "dev")
    pulumi("config", "set", "--secret", "confluentcloud:cloudApiKey", "dev-key", "--stack", "dev")
    for run in ("first push", "second push"):
        (checkout / "Pulumi.pr-7.yaml").unlink(missing_ok=True)  # every run is a fresh runner
        done = subprocess.run(["bash", "-e", "-c", step_script("deploy")], cwd=checkout, env=env, check=False)
        assert done.returncode == 0, run
        environment = pulumi(
            "config", "get", "--path", "kafka-platform:settings.environment", "--stack", "pr-7"
        )
        assert environment.strip() == "dev", run
        secret = pulumi("config", "get", "confluentcloud:cloudApiKey", "--stack", "pr-7")
        assert secret.strip() == "dev-key", run
    assert step_script("destroy") == step_script("deploy"), "destroy needs the same config to run"
