"""The folder tree is the architecture: imports flow one way, from commands down to the model."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

INFRA = Path(__file__).resolve().parents[1] / "infra"
# Bottom to top: a module may import its own layer and the layers below it, never one above.
LAYERS = ["model", "plan", "render", "live", "program", "commands"]
TOP = len(LAYERS)  # infra/cli.py and infra/__main__.py


def _layer(module: str) -> int:
    """`infra.plan.resolve` -> the index of `plan`; `infra.cli` -> TOP."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else TOP


def _imported(tree: ast.Module) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("infra.")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "infra":  # `from infra import cli` or `from infra import plan`
                found += [(node.lineno, f"infra.{alias.name}") for alias in node.names]
            elif node.module.startswith("infra."):
                found.append((node.lineno, node.module))
    return found


def _modules() -> list[Path]:
    return sorted(path for path in INFRA.rglob("*.py") if "__pycache__" not in path.parts)


def test_every_module_lives_in_a_layer() -> None:
    loose = [
        path.name for path in INFRA.glob("*.py") if path.name not in {"__init__.py", "__main__.py", "cli.py"}
    ]
    assert loose == [], f"put these in one of {LAYERS}: {loose}"


@pytest.mark.parametrize("path", _modules(), ids=lambda path: str(path.relative_to(INFRA)))
def test_imports_flow_down(path: Path) -> None:
    own = _layer("infra." + ".".join(path.relative_to(INFRA).with_suffix("").parts))
    upward = [
        f"line {line}: {target}"
        for line, target in _imported(ast.parse(path.read_text(), str(path)))
        if _layer(target) > own
    ]
    assert upward == [], f"{path.relative_to(INFRA.parent)} imports a layer above its own: {upward}"


@pytest.mark.parametrize(
    ("module", "core"),
    [
        ("infra.program.admin_api_provider", "infra.live.cluster_admin"),
        ("infra.program.schema_registry_provider", "infra.live.schema_registry"),
    ],
)
def test_the_dynamic_providers_module_imports_no_program(module: str, core: str) -> None:
    """The dynamic provider's plugin imports these modules before its first answer in every preview
    and up (the module path is in the state): the Pulumi program, the cloud SDKs and pydantic stay
    out of them (with them, the import took 1.0 s instead of 0.24 s)."""
    probe = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=INFRA.parent
    )
    heavy = ("pydantic", "pulumi_confluentcloud", "pulumi_aws", "pulumi_kubernetes", "pulumi_kafka")
    loaded = json.loads(result.stdout)
    offenders = [
        name
        for name in loaded
        if name.split(".")[0] in heavy or name.startswith(("infra.model", "infra.plan", "infra.program.main"))
    ]
    assert offenders == []
    assert core in loaded  # the probe did import the provider's helpers


CLIENT = INFRA.parent / "client" / "src" / "kafka_platform_client"


@pytest.mark.parametrize("path", sorted(CLIENT.glob("*.py")), ids=lambda path: path.name)
def test_the_client_stands_alone(path: Path) -> None:
    """Services install the client without the platform: it reads the env, never `infra`."""
    tree = ast.parse(path.read_text(), str(path))
    imported = [f"line {line}: {target}" for line, target in _imported(tree)]
    assert imported == [], f"{path.relative_to(INFRA.parent)} imports the platform: {imported}"
