"""`python -m infra env`: the env flags each service receives, ready to `export`."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from infra.errors import ConfigError, Problem
from infra.messaging_connections import CELERY_BROKER_URL_ENV, REDIS_URL_ENV
from infra.plan_model import Plan


def render_env(plan: Plan, services: Sequence[str] | None = None, host: bool = False) -> str:
    local = plan.cluster.local_settings() if plan.cluster.provider == "local" else None
    unknown = sorted(set(services or ()) - {s.name for s in plan.services})
    if unknown:
        known = ", ".join(s.name for s in plan.services)
        raise ConfigError(
            [
                Problem(
                    "command line", ("--service",), f"unknown service(s) {', '.join(unknown)}; known: {known}"
                )
            ]
        )
    out: list[str] = []
    for service in plan.services:
        if services and service.name not in services:
            continue
        env = dict(service.env)
        if host and local is not None:
            env["KAFKA_BROKER_URL"] = local.external_bootstrap
            for key, connection in ((REDIS_URL_ENV, plan.redis), (CELERY_BROKER_URL_ENV, plan.celery_broker)):
                if key in env and connection is not None and connection.host_url is not None:
                    env[key] = connection.host_url
        where = f"ConfigMap {service.config_map}" if plan.kubernetes else "stack output service_env"
        out.append(f"# {service.name} ({where})")
        out += [f"export {key}={shlex.quote(value)}" for key, value in env.items()]
        source = f"Secret {service.secret}" if plan.kubernetes else "stack output service_credentials"
        for key, what in service.secret_env.items():
            out.append(f"# {key}: {what}, from {source}")
        out.append("")
    return "\n".join(out)
