from __future__ import annotations

from pathlib import Path

import pytest

from tests.project_files import REPO, Project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO
