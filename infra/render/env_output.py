"""`python -m infra env`: the env flags each service receives, ready to `export`."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from infra.model.errors import ConfigError, Problem, did_you_mean
from infra.plan.messaging_connections import CELERY_BROKER_URL_ENV, REDIS_URL_ENV
from infra.plan.model import BOOTSTRAP_TOKEN, Plan, ServicePlan
from infra.render.compose import LOCAL_SCRAM_MECHANISM, SECURE_BROKER_SERVICE

SASL_USERNAME_ENV = "KAFKA_SASL_USERNAME"
SASL_PASSWORD_ENV = "KAFKA_SASL_PASSWORD"  # pragma: allowlist secret - a variable's name


def render_env(
    plan: Plan,
    services: Sequence[str] | None = None,
    host: bool = False,
    local_passwords: dict[str, str] | None = None,
) -> str:
    """Each service's env. ``host``: a local stack's addresses for processes on the host;
    ``local_passwords`` (service -> password): the local stack's secure listener, with its
    LOCAL-DEV-ONLY credentials printed (the only credentials this ever prints)."""
    known = [s.name for s in plan.services]
    unknown = sorted(set(services or ()) - set(known))
    if unknown:
        hints = "".join(did_you_mean(name, known) for name in unknown)
        raise ConfigError(
            [
                Problem(
                    "command line",
                    ("--service",),
                    f"unknown service(s) {', '.join(unknown)}{hints}; known: {', '.join(known)}",
                )
            ]
        )
    out: list[str] = []
    if local_passwords is not None:
        out.append("# LOCAL-DEV-ONLY credentials of the local secure listener (.env, else .env.example)")
    for service in plan.services:
        if services and service.name not in services:
            continue
        out += _service_env(plan, service, host, local_passwords)
    return "\n".join(out)


def _service_env(
    plan: Plan, service: ServicePlan, host: bool, local_passwords: dict[str, str] | None
) -> list[str]:
    # A service still on a migration's source keeps the source's address and login.
    on_local = plan.cluster.provider == "local" and service.cluster == "target"
    local = plan.cluster.local_settings() if on_local else None
    env = dict(service.env)
    if host and local is not None:
        env["KAFKA_BROKER_URL"] = local.external_bootstrap
        for key, connection in ((REDIS_URL_ENV, plan.redis), (CELERY_BROKER_URL_ENV, plan.celery_broker)):
            if key in env and connection is not None and connection.host_url is not None:
                env[key] = connection.host_url
    if local is not None and local_passwords is not None:
        internal_port = local.internal_bootstrap.rsplit(":", 1)[1]
        env["KAFKA_BROKER_URL"] = (
            local.secure_external_bootstrap if host else f"{SECURE_BROKER_SERVICE}:{internal_port}"
        )
        env["KAFKA_SECURITY_PROTOCOL"] = "SASL_PLAINTEXT"
        env["KAFKA_SASL_MECHANISM"] = LOCAL_SCRAM_MECHANISM
        env[SASL_USERNAME_ENV] = service.principal
        env[SASL_PASSWORD_ENV] = local_passwords[service.name]
    where = f"ConfigMap {service.config_map}" if plan.kubernetes else "stack output service_env"
    on_source = "; on the migration's source" if service.cluster == "source" else ""
    lines = [f"# {service.name} ({where}{on_source})"]
    for key, value in env.items():
        if value == BOOTSTRAP_TOKEN:
            output = f"pulumi stack output bootstrap_servers --stack {plan.stack}"
            lines.append(f"# {key}: known after deployment: `{output}`")
        else:
            lines.append(f"export {key}={shlex.quote(value)}")
    if local_passwords is None:
        source = f"Secret {service.secret}" if plan.kubernetes else "stack output service_credentials"
        lines += [f"# {key}: {what}, from {source}" for key, what in service.secret_env.items()]
    lines.append("")
    return lines
