"""`env`: each service's env flags, ready to `export` (secrets are never printed, except the local
stack's LOCAL-DEV-ONLY passwords with `--secure`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.commands.common import EXIT_CONFIG_ERROR, EXIT_OK, CommandFailed, load_plan
from infra.live.local_cluster import host_registry_url, local_users
from infra.render.env_output import render_env


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("env", help="print each service's env flags (secrets are never printed)")
    parser.add_argument("--stack", required=True, help="a stack name (local, dev, prod, pr-<n>) or file")
    parser.add_argument("--service", action="append", help="only this service (repeatable)")
    parser.add_argument(
        "--host", action="store_true", help="local stack: the addresses processes on the host use"
    )
    parser.add_argument(
        "--secure",
        action="store_true",
        help="local stack: the SASL listener, with each service's user and LOCAL-DEV-ONLY password",
    )


def run(args: argparse.Namespace, project_dir: Path) -> int:
    plan = load_plan(project_dir, args.stack)
    local = plan.cluster.provider == "local"
    for flag, given in (("--host", args.host), ("--secure", args.secure)):
        if given and not local:
            raise CommandFailed(
                EXIT_CONFIG_ERROR,
                f"{flag} is for a local stack; stack '{args.stack}' runs on {plan.cluster.provider}",
            )
    passwords = None
    if args.secure:
        by_user = {user.service: user.password for user in local_users(project_dir, plan)}
        passwords = {service.name: by_user[service.name] for service in plan.services}
    # The Java path's registry (Apicurio) serves the API under its own path; Compose's at the root.
    registry = host_registry_url(project_dir, plan) if local else None
    sys.stdout.write(
        render_env(
            plan,
            services=args.service,
            host=args.host,
            local_passwords=passwords,
            host_registry_url=registry,
        )
    )
    return EXIT_OK
