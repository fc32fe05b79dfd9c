"""Human-readable rendering of a plan (`python -m infra plan --format table`)."""

from __future__ import annotations

from collections.abc import Sequence

from infra.plan.model import Plan


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    return [line(headers), line(["-" * width for width in widths]), *(line(row) for row in rows)]


def _own_messaging(plan: Plan) -> list[str]:
    """The services whose backend or dual write is not the stack's (settings.messaging.services)."""
    stack = (plan.messaging_backend, str(plan.dual_write).lower())
    own = []
    for service in plan.services:
        backend, dual_write = service.env["MESSAGING_BACKEND"], service.env["MESSAGING_DUAL_WRITE"]
        if (backend, dual_write) != stack:
            own.append(f"{service.name} (backend {backend}, dual_write {dual_write})")
    return own


def _migration(plan: Plan) -> list[str]:
    """Where each service stands, and the mirror's grants on both clusters."""
    migration = plan.migration
    if migration is None:
        return []
    source, target = migration.source, migration.target
    out = [
        "",
        f"MIGRATION from {source.bootstrap} (source) to this stack's cluster (target)",
        f"  on the source: {', '.join(migration.services_on('source')) or '-'}",
        f"  on the target: {', '.join(migration.services_on('target')) or '-'}",
        f"  mirrored: {len(migration.topics)} topics, groups {', '.join(migration.groups) or '-'}"
        + (f", group prefixes {', '.join(migration.group_prefixes)}" if migration.group_prefixes else ""),
        "",
        f"MIRROR ACLS ({len(source.acls)} on the source, {len(target.acls)} on the target, principal "
        f"{source.principal})",
    ]
    return out + _table(
        ["cluster", "operation", "resource", "pattern", "name"],
        [
            [side.alias, a.operation, a.resource_type, a.pattern_type, a.resource_name]
            for side in (source, target)
            for a in side.acls
        ],
    )


def render_table(plan: Plan) -> str:
    cluster = plan.cluster
    where = {"kafka": "existing cluster", "local": "local broker"}.get(cluster.provider, "own cluster")
    if cluster.shared_from_stack:
        where = f"shared with stack '{cluster.shared_from_stack}'"
    namespace = plan.kubernetes.namespace if plan.kubernetes else "none (kubernetes: none)"
    out = [
        f"stack {plan.stack}  environment {plan.environment}  provider {cluster.provider} ({where})",
        f"namespace {namespace}  backend {plan.messaging_backend}  "
        f"dual_write {str(plan.dual_write).lower()}  protected {str(plan.protection.protect).lower()}",
    ]
    if own_messaging := _own_messaging(plan):
        out.append(f"services with their own messaging: {', '.join(own_messaging)}")
    out += ["", f"TOPICS ({len(plan.topics)})"]
    out += _table(
        ["name", "partitions", "replication", "config"],
        [
            [
                t.name,
                str(t.partitions),
                str(t.replication_factor),
                " ".join(f"{k}={v}" for k, v in t.config.items()),
            ]
            for t in plan.topics
        ],
    )
    out += ["", f"PRINCIPALS ({len(plan.principals)})"]
    out += _table(["service", "principal"], [[p.service, p.name] for p in plan.principals])
    if plan.access_mode == "rbac":
        out += ["", f"ROLE BINDINGS ({len(plan.role_bindings)}, acls.mode rbac)"]
        out += _table(
            ["principal", "role", "crn pattern"],
            [[b.principal, b.role, b.crn_pattern] for b in plan.role_bindings],
        )
    else:
        out += ["", f"ACLS ({len(plan.acls)}, all ALLOW, host *, acls.mode {plan.access_mode})"]
        out += _table(
            ["principal", "operation", "resource", "pattern", "name"],
            [[a.principal, a.operation, a.resource_type, a.pattern_type, a.resource_name] for a in plan.acls],
        )
    if plan.migration is not None:
        out += _migration(plan)
    if plan.subjects:
        out += ["", f"SCHEMA SUBJECTS ({len(plan.subjects)})"]
        out += _table(
            ["subject", "schema", "compatibility", "producers", "consumers"],
            [
                [
                    s.subject,
                    s.schema_file,
                    s.compatibility,
                    ",".join(s.producers) or "-",
                    ",".join(s.consumers) or "-",
                ]
                for s in plan.subjects
            ],
        )
    for service in plan.services:
        rollout = (
            f"rolls deployment {service.rollout_deployment}" if service.rollout_deployment else "no rollout"
        )
        objects = f"ConfigMap {service.config_map}" + (f", Secret {service.secret}" if service.secret else "")
        if plan.kubernetes is None:
            objects = "stack output service_env"
        on = f"on the {service.cluster}; " if plan.migration is not None else ""
        out += ["", f"SERVICE {service.name} ({on}{objects}; {rollout})"]
        out += [f"  {key}={value}" for key, value in service.env.items()]
        out += [f"  {key}=<secret: {what}>" for key, what in service.secret_env.items()]
    return "\n".join(out) + "\n"
