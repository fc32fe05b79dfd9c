"""The first `make local` downloads Apache Kafka with Maven: it says so before it starts, and a
failed download is one line with Maven's own error and exit 1, not a traceback after a minute of
silence. The download is made to fail for real: Maven offline with an empty local repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.live.kafka_broker import KAFKA_VERSION, missing_tools
from tests.integration.test_local_without_docker import cli, free_port, on_local_ports
from tests.project_files import Project

OFFLINE = "<settings><offline>true</offline></settings>\n"


def test_a_failed_jar_download_is_one_clear_line(tmp_path: Path) -> None:
    if missing_tools():
        pytest.skip("needs Java and Maven")
    home = tmp_path / "home"
    (home / ".m2").mkdir(parents=True)
    (home / ".m2" / "settings.xml").write_text(OFFLINE)
    (tmp_path / "project").mkdir()
    project = on_local_ports(Project(tmp_path / "project"), free_port(), free_port())
    # Java's user.home (where Maven reads ~/.m2) comes from the password database, not $HOME.
    offline = {"MAVEN_OPTS": f"-Duser.home={home}", "KAFKA_PLATFORM_CACHE": str(tmp_path / "cache")}
    result = cli(project, "local", "up", "--runtime", "java", env=offline)
    assert result.returncode == 1, result.stdout
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"downloading Apache Kafka {KAFKA_VERSION} and its dependencies with Maven")
    assert lines[-1].startswith(
        f"local: cannot start the local Kafka: downloading Apache Kafka {KAFKA_VERSION} with Maven failed:"
    )
    # Maven's own words for an offline run with an empty repository.
    assert "No plugin found for prefix 'dependency'" in lines[-1]
    assert "Traceback" not in result.stderr
