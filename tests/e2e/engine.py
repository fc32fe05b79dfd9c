"""The project's own Pulumi program under the real engine, as close to `pulumi up` in a clone as
this machine allows: the project's real `Pulumi.yaml` at the workspace root (its `main` and
runtime options), the plugins `make engine` built, the release's own dynamic-provider script
and program runner (`pulumi-resource-pulumi-python`, `pulumi-language-python-exec`, from the CLI
version's `github.com/pulumi/pulumi/sdk/v3` module), a file backend, and the Automation API,
whose language server starts the program as the official language host would
(`release_program.py`). What that still leaves different from the CLI: docs/testing.md, "The
real engine"."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pulumi import automation as auto

from infra.live.kafka_broker import Broker
from infra.model.stacks import ADMIN_PASSWORD_KEY, PROJECT, SETTINGS_KEY
from tests.e2e.release_program import run_programs_with
from tests.project_files import EXAMPLE, REPO

ENGINE_ROOT = Path(sys.prefix) / "engine"  # .venv/engine, where `make engine` links them
ENGINE_BIN = ENGINE_ROOT / "bin"
REQUIRED_BINARIES = (
    "pulumi",
    "pulumi-resource-kafka",
    "pulumi-resource-random",
    "pulumi-analyzer-policy-python",
    "pulumi-resource-pulumi-python",
)
# The parallelism docs/performance.md measured and the README recommends.
PARALLEL = 32


def missing_binaries() -> list[str]:
    return [name for name in REQUIRED_BINARIES if not (ENGINE_BIN / name).exists()]


def runtime_options_env(pulumi_yaml: Path) -> dict[str, str]:
    """What the CLI hands every plugin from `Pulumi.yaml`'s runtime options (through the language
    host: pulumi/pulumi sdk/go/common/resource/plugin/provider_plugin.go, `PULUMI_RUNTIME_` +
    the option's name in capitals). An inline program has no language host, so the engine
    passes none of them: the harness does, exactly these and nothing else."""
    runtime = yaml.safe_load(pulumi_yaml.read_text())["runtime"]
    options = runtime.get("options", {}) if isinstance(runtime, dict) else {}
    return {f"PULUMI_RUNTIME_{key.upper()}": str(value) for key, value in options.items()}


def lay_out_clone(root: Path, release: str | None = None) -> None:
    """``root`` as a clone after the README's set-up: the project files and `.venv` (the
    virtualenv `make venv` made, linked). ``release``: a commit whose `Pulumi.yaml` and
    `infra/` to take instead (what a user of that release had)."""
    root.mkdir(parents=True, exist_ok=True)
    if release is not None:
        files = subprocess.run(
            ["git", "-C", str(REPO), "archive", release, "Pulumi.yaml", "infra"],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", str(root)], input=files.stdout, check=True)
    else:
        for name in ("Pulumi.yaml", "__main__.py", "requirements.txt"):
            shutil.copy(REPO / name, root / name)
        if not (root / "infra").exists():
            shutil.copytree(REPO / "infra", root / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    if not (root / ".venv").exists():
        (root / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)


def existing_cluster_settings(broker: Broker, **overrides: Any) -> dict[str, Any]:
    """A `provider: kafka` stack on the test broker, with no Kubernetes side."""
    settings: dict[str, Any] = {
        "environment": "e2e",
        "kafka": {
            "provider": "kafka",
            "cluster": {
                "bootstrap_servers": broker.bootstrap.split(","),
                "security_protocol": broker.security_protocol,
                "sasl_mechanism": broker.sasl_mechanism,
                "admin": {"username": broker.admin_user},
            },
        },
        "topics": {
            "defaults": {"partitions": 1, "replication": 1, "min_insync_replicas": 1, "retention": "1d"}
        },
        "messaging": {"backend": "kafka", "dual_write": False},
        "kubernetes": "none",
    }
    settings.update(overrides)
    return settings


@dataclass
class EngineProject:
    """A project directory (topology.yaml, Pulumi.<stack>.yaml) and its own file backend."""

    root: Path
    broker: Broker
    passphrase: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    extra_env: dict[str, str] = field(default_factory=dict)

    release: str | None = None  # a commit whose Pulumi.yaml and infra/ to use (default: this checkout's)

    def __post_init__(self) -> None:
        lay_out_clone(self.root, self.release)
        (self.root / "state").mkdir(parents=True, exist_ok=True)
        (self.root / "home").mkdir(exist_ok=True)
        shutil.copy(EXAMPLE / "topology.yaml", self.root / "topology.yaml")

    def edit_topology(self, edit: Callable[[dict[str, Any]], None]) -> None:
        path = self.root / "topology.yaml"
        data = yaml.safe_load(path.read_text())
        edit(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    def write_settings(self, stack: str, settings: dict[str, Any]) -> None:
        """What `pulumi config set --path` would leave in Pulumi.<stack>.yaml (secrets kept)."""
        path = self.root / f"Pulumi.{stack}.yaml"
        document = yaml.safe_load(path.read_text()) if path.exists() else {}
        document.setdefault("config", {})[SETTINGS_KEY] = settings
        path.write_text(yaml.safe_dump(document, sort_keys=False))

    def env(self) -> dict[str, str]:
        return {
            "PATH": f"{ENGINE_BIN}{os.pathsep}{os.environ['PATH']}",
            "PULUMI_HOME": str(self.root / "home"),
            "PULUMI_CONFIG_PASSPHRASE": self.passphrase,
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_BACKEND_URL": f"file://{self.root / 'state'}",
            **runtime_options_env(self.root / "Pulumi.yaml"),
            **self.extra_env,
        }

    def cli(self, *args: str) -> str:
        """Run the Pulumi CLI in the project directory, on the same backend and passphrase."""
        result = subprocess.run(
            [str(ENGINE_BIN / "pulumi"), *args, "--non-interactive"],
            cwd=self.root,
            env={**os.environ, **self.env()},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def kafka_platform(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The project's own CLI (`kafka-platform`), with the engine on PATH."""
        return subprocess.run(
            [sys.executable, "-m", "infra", "--project-dir", str(self.root), *args],
            env={**os.environ, **self.env(), **(env or {})},
            capture_output=True,
            text=True,
            check=False,
        )

    def import_adopt_list(self, stack: str) -> dict[str, list[str]]:
        """`kafka-platform import --stack` against the broker, as docs/adoption-and-drift.md says:
        the `adopt` list of what already exists (also written to import.<stack>.yaml)."""
        imported = self.kafka_platform(
            "import",
            "--topology",
            str(self.root / "topology.yaml"),
            "--stack",
            stack,
            "--bootstrap-servers",
            self.broker.bootstrap,
            "--security-protocol",
            self.broker.security_protocol,
            "--sasl-mechanism",
            self.broker.sasl_mechanism,
            "--username",
            self.broker.admin_user,
            env={"KAFKA_ADMIN_PASSWORD": self.broker.admin_password},
        )
        assert imported.returncode == 0, imported.stderr
        adopt: dict[str, list[str]] = yaml.safe_load((self.root / f"import.{stack}.yaml").read_text())[
            "adopt"
        ]
        return adopt

    def migrate_state(self, stack: str) -> str:
        migrated = self.kafka_platform("migrate-state", "--stack", stack)
        assert migrated.returncode == 0, migrated.stderr
        return migrated.stdout

    def stack(self, name: str, settings: dict[str, Any] | None = None) -> auto.Stack:
        if settings is not None:
            self.write_settings(name, settings)
        # No project_settings: the workspace reads the Pulumi.yaml at its root, as the CLI does.
        options = auto.LocalWorkspaceOptions(
            work_dir=str(self.root),
            pulumi_command=auto.PulumiCommand(root=str(ENGINE_ROOT)),
            env_vars=self.env(),
        )

        # The engine runs the clone's __main__.py through the release's exec script; the inline
        # program the Automation API asks for is never called in this process.
        run_programs_with(ENGINE_BIN / "pulumi-language-python-exec")

        def program() -> None:
            raise AssertionError("the program runs through pulumi-language-python-exec, not in the test")

        stack = auto.create_or_select_stack(
            stack_name=name, project_name=PROJECT, program=program, opts=options
        )
        stack.set_config(ADMIN_PASSWORD_KEY, auto.ConfigValue(self.broker.admin_password, secret=True))
        return stack


# Deploys the program of an earlier commit (its `infra/` on sys.path first) on the same project.
_RELEASE_UP = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from pulumi import automation as auto
import infra.program  # that release's program: its entry was infra/program/__init__.py

root = Path(sys.argv[2])
stack = auto.create_or_select_stack(
    stack_name=sys.argv[3],
    project_name="kafka-platform",
    program=lambda: infra.program.run(root),
    opts=auto.LocalWorkspaceOptions(
        work_dir=str(root),
        pulumi_command=auto.PulumiCommand(root=sys.argv[4]),
    ),
)
stack.up(parallel=int(sys.argv[5]))
"""


def deploy_with_release(project: EngineProject, stack: str, release: str, work: Path) -> None:
    """`pulumi up` of ``stack`` by the program as it was at commit ``release`` (git history)."""
    previous = work / f"release-{release}"
    previous.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", release, "infra"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(previous)], input=archive.stdout, check=True)
    deployed = subprocess.run(
        [
            sys.executable,
            "-c",
            _RELEASE_UP,
            str(previous),
            str(project.root),
            stack,
            str(ENGINE_ROOT),
            str(PARALLEL),
        ],
        env={**os.environ, **project.env()},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert deployed.returncode == 0, deployed.stderr[-3000:]


def state_resources(stack: auto.Stack) -> list[dict[str, Any]]:
    """The resources in the stack's checkpoint (`pulumi stack export`)."""
    deployment = stack.export_stack().deployment or {}
    resources: list[dict[str, Any]] = deployment.get("resources", [])
    return resources
