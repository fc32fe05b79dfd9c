"""The CLI as a user runs it: exit codes, output formats, no secrets, no tracebacks."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.project_files import Project, confluent_migrating_stack_file, migrating_stack_file


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env=None if env is None else os.environ | env,
    )


@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_validate_each_shipped_stack_exits_zero(example_dir: Path, stack: str) -> None:
    result = run_cli("validate", "--stack", stack, cwd=example_dir)
    assert result.returncode == 0, result.stderr
    assert f"ok  {stack}: 6 topics, 5 principals" in result.stdout


def test_validate_without_stack_checks_every_stack_file(example_dir: Path) -> None:
    result = run_cli("validate", cwd=example_dir)
    assert result.returncode == 0, result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == ["ok  dev", "ok  local", "ok  prod"]


def test_plan_json_for_prod_is_byte_identical_across_runs(example_dir: Path) -> None:
    first = run_cli("plan", "--stack", "prod", "--format", "json", cwd=example_dir)
    second = run_cli("plan", "--stack", "prod", "--format", "json", cwd=example_dir)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    plan = json.loads(first.stdout)
    assert len(plan["topics"]) == 6
    assert len(plan["principals"]) == 5
    assert plan["topics"][0]["config"]["retention.ms"] == "604800000"


def test_plan_works_for_any_pr_stack_without_pulumi(example_dir: Path) -> None:
    result = run_cli("plan", "--stack", "pr-42", "--format", "json", cwd=example_dir)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert all(topic["name"].startswith("pr-42.") for topic in plan["topics"])


def test_plan_table_lists_topics_acls_and_env(example_dir: Path) -> None:
    result = run_cli("plan", "--stack", "dev", cwd=example_dir)
    assert result.returncode == 0, result.stderr
    assert "TOPICS (6)" in result.stdout
    assert re.search(r"^aura360.dev.api +WRITE +TOPIC +LITERAL +aura360.user.events$", result.stdout, re.M)
    assert (
        "SERVICE api (ConfigMap api-kafka-env, Secret api-kafka-credentials; rolls deployment aura360-api)"
        in (result.stdout)
    )
    assert "KAFKA_SASL_PASSWORD=<secret: API key secret>" in result.stdout


def test_bad_input_exits_2_with_key_path_and_no_traceback(project: Project) -> None:
    project.edit_settings("prod", lambda s: s["topics"]["overrides"]["user.events"].update(partitions=0))
    result = run_cli("validate", "--stack", "prod", cwd=project.root)
    assert result.returncode == 2
    assert (
        'Pulumi.prod.yaml: settings.topics.overrides."user.events".partitions: must be >= 1' in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_plan_of_an_invalid_stack_exits_2(project: Project) -> None:
    project.edit_topology(lambda t: t["services"]["api"].update(produces=["missing"]))
    result = run_cli("plan", "--stack", "dev", "--format", "json", cwd=project.root)
    assert result.returncode == 2
    assert "topology.yaml: services.api.produces[0]: unknown topic 'missing'" in result.stderr
    assert result.stdout == ""


def test_secret_values_in_stack_files_are_never_printed(project: Project) -> None:
    text = (project.root / "Pulumi.dev.yaml").read_text()
    project.write(
        "Pulumi.dev.yaml",
        text.replace(
            "config:\n",
            "config:\n  confluentcloud:cloudApiSecret:\n"
            "    secure: v1:U0FMVFNBTFQ=:U1VQRVJTRUNSRVRDSVBIRVJURVhU\n",
            1,
        ),
    )
    for args in (("validate",), ("plan", "--stack", "dev"), ("plan", "--stack", "dev", "--format", "json")):
        result = run_cli(*args, cwd=project.root)
        assert result.returncode == 0, result.stderr
        assert "U1VQRVJTRUNSRVRDSVBIRVJURVhU" not in result.stdout + result.stderr


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "kafka-platform"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "validate" in result.stdout and "plan" in result.stdout


def test_version_and_the_programs_own_name(example_dir: Path) -> None:
    version = run_cli("--version", cwd=example_dir)
    assert (version.returncode, version.stdout.strip()) == (0, "kafka-platform 0.2.0")
    assert run_cli("--help", cwd=example_dir).stdout.startswith("usage: kafka-platform")


def test_outside_a_project_it_says_so_instead_of_validating_another(tmp_path: Path) -> None:
    console = Path(sys.executable).parent / "kafka-platform"
    result = subprocess.run(
        [str(console), "validate"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"no Pulumi.yaml in {tmp_path} or any directory above it")
    assert result.stdout == ""


def test_without_the_virtualenv_it_says_to_activate_it(repo_dir: Path) -> None:
    """`python -S` sees no site-packages: what a bare system Python without the dependencies sees."""
    result = subprocess.run(
        [sys.executable, "-S", "-m", "infra", "validate"],
        cwd=repo_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "the CLI runs inside the project virtualenv. Run `make venv`" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_stack_suggests_the_closest(example_dir: Path) -> None:
    result = run_cli("plan", "--stack", "prdo", cwd=example_dir)
    assert result.returncode == 2
    assert "no settings for stack 'prdo' (did you mean 'prod'?)" in result.stderr


def test_env_says_when_the_address_is_known_only_after_deployment(example_dir: Path) -> None:
    result = run_cli("env", "--stack", "dev", "--service", "api", cwd=example_dir)
    assert result.returncode == 0, result.stderr
    assert "${cluster.bootstrap}" not in result.stdout
    assert (
        "# KAFKA_BROKER_URL: known after deployment: `pulumi stack output bootstrap_servers --stack dev`"
        in result.stdout.splitlines()
    )


@pytest.mark.parametrize("flag", ["--host", "--secure"])
def test_local_only_env_flags_are_refused_on_a_deployed_stack(example_dir: Path, flag: str) -> None:
    result = run_cli("env", "--stack", "prod", flag, cwd=example_dir)
    assert (result.returncode, result.stderr.strip()) == (
        2,
        f"env: {flag} is for a local stack; stack 'prod' runs on confluent",
    )


def test_env_secure_prints_the_local_users_and_dot_env_passwords(project: Project) -> None:
    project.write(".env", "LOCAL_KAFKA_PASSWORD_API='from-dot-env'\n")  # pragma: allowlist secret
    result = run_cli("env", "--stack", "local", "--host", "--secure", cwd=project.root)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("# LOCAL-DEV-ONLY credentials")
    assert "export KAFKA_BROKER_URL=localhost:19093" in lines
    assert "export KAFKA_SASL_USERNAME=aura360.local.api" in lines
    assert "export KAFKA_SASL_PASSWORD=from-dot-env" in lines
    assert "export KAFKA_SASL_PASSWORD=local-dev-only-guardian" in lines
    assert "export KAFKA_SASL_MECHANISM=SCRAM-SHA-256" in lines


def test_import_never_overwrites_without_force(project: Project) -> None:
    result = run_cli("import", "--output", "topology.yaml", cwd=project.root)
    assert (result.returncode, result.stderr.strip()) == (
        2,
        "import: topology.yaml exists: pass --force to overwrite it",
    )


def test_import_notices_the_shell_emptied_the_topology(project: Project) -> None:
    topology = project.root / "topology.yaml"
    with topology.open("w") as redirected:  # what `import > topology.yaml` does before import runs
        result = subprocess.run(
            [sys.executable, "-m", "infra", "import", "--domain", "x"],
            cwd=project.root,
            stdout=redirected,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    assert result.returncode == 2
    assert "standard output is topology.yaml, which the shell emptied" in result.stderr


def test_drift_of_the_local_stack_with_sasl_but_no_login_is_bad_input(example_dir: Path) -> None:
    result = run_cli(
        "drift",
        "--stack",
        "local",
        "--bootstrap-servers",
        "localhost:1",
        "--security-protocol",
        "SASL_PLAINTEXT",
        cwd=example_dir,
    )
    assert result.returncode == 2
    assert "SASL_PLAINTEXT to localhost:1 needs the admin's --username" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["drift", "lag"])
def test_drift_and_lag_against_a_broker_that_is_not_there_fail_within_seconds(
    example_dir: Path, command: str
) -> None:
    """A stopped broker (connection refused) is the same clear error at once, not after the 20 s
    the command would wait for a slow network."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    started = time.monotonic()
    result = run_cli(
        command,
        "--stack",
        "local",
        "--bootstrap-servers",
        closed,
        "--security-protocol",
        "PLAINTEXT",
        cwd=example_dir,
    )
    assert time.monotonic() - started < 8
    assert result.returncode == 1
    assert f"{command}: the Kafka cluster at {closed} did not answer" in result.stderr


def test_plan_without_a_stack_names_the_stacks(example_dir: Path) -> None:
    result = run_cli("plan", cwd=example_dir)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "plan: which stack? --stack dev | local | prod (or pr-<n>, or a Pulumi.<stack>.yaml path)"
    )


def test_migration_commands_refuse_a_stack_that_is_not_migrating(example_dir: Path) -> None:
    for action in ("status", "mirror"):
        result = run_cli("migration", action, "--stack", "prod", cwd=example_dir)
        assert (result.returncode, result.stderr.strip()) == (
            2,
            "migration: stack 'prod' is not migrating: its stack file has no settings.migration "
            "(docs/migration.md)",
        )


def test_migration_commands_need_their_passwords_from_the_environment(project: Project) -> None:
    project.write("Pulumi.move.yaml", migrating_stack_file({"vectordb-ingest": "target"}))
    status = run_cli(
        "migration", "status", "--stack", "move", "--bootstrap-servers", "127.0.0.1:1", cwd=project.root
    )
    assert status.returncode == 2
    assert "needs the source admin's password in MIGRATION_SOURCE_ADMIN_PASSWORD" in status.stderr
    mirror = run_cli("migration", "mirror", "--stack", "move", cwd=project.root)
    assert mirror.returncode == 2
    assert "MIRROR_SOURCE_PASSWORD and MIRROR_TARGET_PASSWORD: export them" in mirror.stderr
    assert (
        "pulumi stack output migration_mirror_credentials --show-secrets --json --stack move" in mirror.stderr
    )
    # A Confluent Cloud target takes the mirror's API key id as its user name.
    project.write("Pulumi.onto-confluent.yaml", confluent_migrating_stack_file())
    passwords = {"MIRROR_SOURCE_PASSWORD": "x", "MIRROR_TARGET_PASSWORD": "y"}  # pragma: allowlist secret
    keyless = run_cli("migration", "mirror", "--stack", "onto-confluent", cwd=project.root, env=passwords)
    assert keyless.returncode == 2
    assert (
        "export its id in MIRROR_TARGET_USERNAME (target.username of the secret stack output"
        in keyless.stderr
    )
    unknown = run_cli("migration", "status", "--stack", "move", "--require", "billing", cwd=project.root)
    assert unknown.returncode == 2
    assert "--require billing: not in-sync, source-can-go or a service of stack move (" in unknown.stderr
