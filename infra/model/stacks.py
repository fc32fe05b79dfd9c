"""Finding and validating a stack's settings in its Pulumi.<stack>.yaml, offline."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.model.errors import ConfigError, Problem, ProblemCollector, did_you_mean, without_follow_ons
from infra.model.migration_settings import MIGRATION_SOURCE_PASSWORD_NAME
from infra.model.names import looks_like_pr_stack, pr_number
from infra.model.pydantic_problems import Checked, validate_setting_aside
from infra.model.settings import (
    SCHEMA_REGISTRY_PASSWORD_NAME,
    SECRET_URL_CONFIG,
    StackSettings,
    check_settings,
)
from infra.model.topology import Topology, read_topology
from infra.model.yaml_files import load_yaml_file

PROJECT = "kafka-platform"
SETTINGS_KEY = f"{PROJECT}:settings"
# The secrets this project reads itself: the admin password of an existing cluster, and the
# Schema Registry's password (settings.schemas.registry.username).
ADMIN_PASSWORD_NAME = "kafkaAdminPassword"  # pragma: allowlist secret
ADMIN_PASSWORD_KEY = f"{PROJECT}:{ADMIN_PASSWORD_NAME}"
SCHEMA_REGISTRY_PASSWORD_KEY = f"{PROJECT}:{SCHEMA_REGISTRY_PASSWORD_NAME}"
MIGRATION_SOURCE_PASSWORD_KEY = f"{PROJECT}:{MIGRATION_SOURCE_PASSWORD_NAME}"
# Connection URLs that carry a credential (settings.messaging.<redis|celery_broker>.secret).
SECRET_URL_KEYS = {setting: f"{PROJECT}:{name}" for setting, name in SECRET_URL_CONFIG.items()}
TOPOLOGY_FILE = "topology.yaml"
PR_BASE_STACK = "dev"

# What `pulumi config set --secret` writes: base64 ciphertext, "v1:<nonce>:<ciphertext>" with a
# passphrase; anything else (e.g. "v1:REPLACE-me") was written by hand.
_CIPHERTEXT = re.compile(r"^(v1:[A-Za-z0-9+/]+={0,2}:)?[A-Za-z0-9+/]{16,}={0,2}$")
_SECRET_LOOKING_KEY = re.compile(r"(secret|password|passphrase|token|api_?key)", re.IGNORECASE)


@dataclass(frozen=True)
class StackContext:
    """Everything the plan needs about one stack, already validated."""

    name: str
    file: str
    settings: StackSettings
    pr: int | None

    @property
    def is_preview(self) -> bool:
        return self.pr is not None

    @property
    def name_prefix(self) -> str:
        """What a pr-<n> preview puts before its topic, group and transactional id names."""
        return f"pr-{self.pr}." if self.pr is not None else ""


def find_project_dir(start: Path | None = None) -> Path | None:
    """The nearest directory holding Pulumi.yaml, from ``start`` (default: cwd) upwards."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    return None


def stack_file_for(project_dir: Path, stack: str) -> Path:
    """Pulumi.<stack>.yaml; a pr-<n> stack without its own file starts from dev's."""
    own = project_dir / f"Pulumi.{stack}.yaml"
    if own.is_file() or pr_number(stack) is None:
        return own
    return project_dir / f"Pulumi.{PR_BASE_STACK}.yaml"


def locate_stack(project_dir: Path, stack: str) -> tuple[str, Path, str]:
    """(stack name, settings file, how to name the file in messages).

    ``stack`` is a stack name, or a path to a stack file such as
    ``examples/Pulumi.prod-msk.yaml`` (its stack name is ``prod-msk``).
    """
    if stack.endswith(".yaml"):
        path = Path(stack)
        if not path.is_absolute() and not path.exists():
            path = project_dir / path
        return path.name.removeprefix("Pulumi.").removesuffix(".yaml"), path, stack
    path = stack_file_for(project_dir, stack)
    return stack, path, path.name


def settings_from_config(config: Any, file: str) -> StackSettings:
    """Validate the `config:` mapping of a stack file (or Pulumi's config) into settings."""
    checked = checked_settings(config, file)
    if checked.value is None or checked.problems:
        raise ConfigError(checked.problems)
    return checked.value


def checked_settings(config: Any, file: str) -> Checked[StackSettings]:
    """The config keys and the settings' schema, all problems at once; the settings with
    unknown keys set aside when those are their only schema problems."""
    collector = ProblemCollector(file)
    if not isinstance(config, dict):
        collector.add(("config",), "must be a mapping of config keys")
        return Checked(None, collector.problems, [])
    for key, value in config.items():
        namespace, _, name = str(key).partition(":")
        known = {
            SETTINGS_KEY,
            ADMIN_PASSWORD_KEY,
            SCHEMA_REGISTRY_PASSWORD_KEY,
            MIGRATION_SOURCE_PASSWORD_KEY,
            *SECRET_URL_KEYS.values(),
        }
        if namespace == PROJECT and key not in known:
            collector.add(("config", key), f"unknown key; this project reads only {', '.join(sorted(known))}")
        secret_looking = _SECRET_LOOKING_KEY.search(name) or key in SECRET_URL_KEYS.values()
        if isinstance(value, dict) and "secure" in value and not _CIPHERTEXT.match(str(value["secure"])):
            collector.add(
                ("config", key, "secure"),
                "is not a value Pulumi encrypted (a placeholder?); "
                f"run `pulumi config set --secret {key} ...` to store the real one",
            )
        elif secret_looking and not (isinstance(value, dict) and "secure" in value):
            collector.add(
                ("config", key),
                "looks like a credential but is stored in plain text; "
                f"remove it and run `pulumi config set --secret {key} ...`",
            )
    if SETTINGS_KEY not in config:
        collector.add(("config", SETTINGS_KEY), "required key is missing")
        return Checked(None, collector.problems, [])
    schema = validate_setting_aside(StackSettings, config[SETTINGS_KEY], file, prefix=("settings",))
    return Checked(schema.value, [*collector.problems, *schema.problems], schema.set_aside)


def stack_document(project_dir: Path, stack: str) -> tuple[str, str, dict[str, Any]]:
    name, path, label = locate_stack(project_dir, stack)
    if looks_like_pr_stack(name) and pr_number(name) is None:
        raise ConfigError(
            [Problem(f"stack '{name}'", (), "a preview stack is named pr-<number>, e.g. pr-42")]
        )
    if not path.is_file():
        files = sorted(p.name for p in project_dir.glob("Pulumi.*.yaml"))
        stacks = [file.removeprefix("Pulumi.").removesuffix(".yaml") for file in files]
        raise ConfigError(
            [
                Problem(
                    label,
                    (),
                    f"no settings for stack '{name}'{did_you_mean(name, stacks)}; "
                    f"stack files here: {', '.join(files)}",
                )
            ]
        )
    document = load_yaml_file(path, label) or {}
    if not isinstance(document, dict):
        raise ConfigError([Problem(label, (), "must be a mapping with a `config:` key")])
    return name, label, document


def load_stack(project_dir: Path, stack: str, topology: Topology) -> StackContext:
    name, label, document = stack_document(project_dir, stack)
    config = document.get("config", {})
    settings = settings_from_config(config, label)
    return checked_stack(name, label, settings, topology, config_keys=config)


def checked_stack(
    stack: str, file: str, settings: StackSettings, topology: Topology, config_keys: Iterable[str] = ()
) -> StackContext:
    """Cross-check settings against the topology and the stack's other config keys (all
    problems at once)."""
    problems = stack_problems(stack, file, settings, topology, config_keys)
    if problems:
        raise ConfigError(problems)
    return StackContext(name=stack, file=file, settings=settings, pr=pr_number(stack))


def stack_problems(
    stack: str, file: str, settings: StackSettings, topology: Topology, config_keys: Iterable[str] = ()
) -> list[Problem]:
    """What `checked_stack` refuses."""
    collector = ProblemCollector(file, prefix=("settings",))
    check_settings(settings, topology, collector)
    if settings.kafka.provider == "kafka" and ADMIN_PASSWORD_KEY not in set(config_keys):
        collector.problems.append(
            Problem(
                file,
                ("config", ADMIN_PASSWORD_KEY),
                "required for provider 'kafka': "
                f"`pulumi config set --secret {ADMIN_PASSWORD_KEY} <admin password>`",
            )
        )
    if settings.migration is not None and MIGRATION_SOURCE_PASSWORD_KEY not in set(config_keys):
        collector.problems.append(
            Problem(
                file,
                ("config", MIGRATION_SOURCE_PASSWORD_KEY),
                "required by settings.migration (the source cluster's admin): "
                f"`pulumi config set --secret {MIGRATION_SOURCE_PASSWORD_KEY} <admin password>`",
            )
        )
    registry = settings.schemas.registry
    if registry is not None and registry.username and SCHEMA_REGISTRY_PASSWORD_KEY not in set(config_keys):
        collector.problems.append(
            Problem(
                file,
                ("config", SCHEMA_REGISTRY_PASSWORD_KEY),
                "required by settings.schemas.registry.username: "
                f"`pulumi config set --secret {SCHEMA_REGISTRY_PASSWORD_KEY} <password>`",
            )
        )
    for setting, key in SECRET_URL_KEYS.items():
        connection = getattr(settings.messaging, setting)
        if connection is not None and connection.secret and key not in set(config_keys):
            collector.problems.append(
                Problem(
                    file,
                    ("config", key),
                    f"required by settings.messaging.{setting}.secret: "
                    f"`pulumi config set --secret {key} <url>`",
                )
            )
    pr = pr_number(stack)
    if pr is not None and settings.production:
        collector.add(("production",), f"stack '{stack}' is a throw-away preview; create it from dev")
    if pr is not None and settings.kafka.provider == "msk":
        collector.add(
            ("kafka", "provider"),
            "pr-<n> previews share dev's cluster, which MSK's single exclusive SCRAM "
            "association does not allow; previews need a Confluent dev stack",
        )
    return collector.problems


def load_project(project_dir: Path, stack: str) -> tuple[Topology, StackContext]:
    """Load topology and one stack, reporting every problem of both files the input allows
    in one run: each file's schema (unknown keys set aside, see `validate_setting_aside`),
    the topology's own rules, and the stack's checks against the topology where the topology
    holds all its keys (a stack check could otherwise follow from a key set aside there)."""
    topology = read_topology(project_dir / TOPOLOGY_FILE)
    try:
        name, label, document = stack_document(project_dir, stack)
    except ConfigError as exc:
        raise ConfigError([*topology.problems, *exc.problems]) from None
    config = document.get("config", {})
    settings = checked_settings(config, label)
    problems = [*topology.problems, *settings.problems]
    if topology.value is not None and not topology.set_aside and settings.value is not None:
        cross = stack_problems(name, label, settings.value, topology.value, config_keys=config)
        problems += without_follow_ons(cross, settings.set_aside)
    if problems or topology.value is None or settings.value is None:
        raise ConfigError(problems)
    return topology.value, StackContext(name=name, file=label, settings=settings.value, pr=pr_number(name))
