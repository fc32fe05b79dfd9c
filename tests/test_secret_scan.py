"""Secret scanning: the repository is clean, and a planted Confluent-style credential is caught."""

from __future__ import annotations

import base64
import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

SCANNER = Path(sys.executable).parent / "detect-secrets-hook"


def scan(*files: Path | str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCANNER), *map(str, files)], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_repository_has_no_findings(repo_dir: Path) -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=repo_dir, capture_output=True, text=True, check=True)
    files = [name for name in tracked.stdout.splitlines() if (repo_dir / name).is_file()]
    assert "README.md" in files
    result = scan(*files, cwd=repo_dir)
    assert result.returncode == 0, result.stdout


def test_a_planted_confluent_credential_is_caught(tmp_path: Path) -> None:
    # Generated at run time so the repository itself never holds a credential-shaped literal.
    key = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16))
    secret = base64.b64encode(os.urandom(48)).decode()
    planted = tmp_path / "settings.env"
    planted.write_text(f"CONFLUENT_CLOUD_API_KEY={key}\nCONFLUENT_CLOUD_API_SECRET={secret}\n")
    result = scan(planted, cwd=tmp_path)
    assert result.returncode != 0
    assert "settings.env:2" in result.stdout
