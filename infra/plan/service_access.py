"""How a stack grants its services what they need (`settings.acls.mode`), and whether the
cluster's ACL limit takes it.

- literal: one ACL per resource and operation, the exact grants (the default);
- prefixed: the same, with topic grants folded into PREFIXED ACLs where that grants no planned
  topic more (`acl_compaction`); each folded prefix is reported as a warning;
- rbac: Confluent Cloud role bindings instead of ACLs (`role_bindings`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from infra.model.errors import Problem
from infra.model.settings import CONFLUENT_ACL_LIMITS, RBAC_TIERS, AclMode, StackSettings
from infra.plan.acl_compaction import compact_acls
from infra.plan.model import AclBinding, RoleBinding
from infra.plan.role_bindings import role_bindings_for

MODE_PATH = ("settings", "acls", "mode")
# The platform admin's own ACLs on MSK, which infra/program/msk.py grants: cluster ALTER, then
# CREATE, DELETE, ALTER and ALTER_CONFIGS on the domain's topics.
MSK_ADMIN_ACLS = 5


@dataclass(frozen=True)
class LiteralGrants:
    """The exact grants of every service, and what compaction must know about the names."""

    acls: list[AclBinding]
    topic_names: list[str]  # every planned topic
    runtime_prefixes: list[str]  # where Streams apps create topics at run time

    def compacted(self) -> list[AclBinding]:
        return compact_acls(self.acls, self.topic_names, self.runtime_prefixes)


@dataclass(frozen=True)
class GrantedAccess:
    acls: list[AclBinding]
    role_bindings: list[RoleBinding]
    warnings: list[Problem] = field(default_factory=list)


def grant_access(mode: AclMode, grants: LiteralGrants, file: str) -> GrantedAccess:
    """The stack's form of the exact grants."""
    if mode == "rbac":
        return GrantedAccess(acls=[], role_bindings=role_bindings_for(grants.acls))
    if mode == "literal":
        return GrantedAccess(acls=grants.acls, role_bindings=[])
    compacted = grants.compacted()
    warnings = [
        Problem(
            file,
            MODE_PATH,
            f"service '{service}' is granted {', '.join(folded)} on every topic under these prefixes, "
            "including any topic created there outside topology.yaml",
        )
        for service, folded in _folded_prefixes(grants.acls, compacted).items()
    ]
    return GrantedAccess(acls=compacted, role_bindings=[], warnings=warnings)


def _folded_prefixes(literal: list[AclBinding], compacted: list[AclBinding]) -> dict[str, list[str]]:
    """Per service, the PREFIXED topic grants compaction made (not those the service always has)."""
    exact = set(literal)
    folded: dict[str, list[str]] = {}
    for acl in compacted:
        if acl.resource_type == "TOPIC" and acl.pattern_type == "PREFIXED" and acl not in exact:
            folded.setdefault(acl.service, []).append(f"{acl.operation} '{acl.resource_name}*'")
    return folded


@dataclass(frozen=True)
class AclBudget:
    """The ACLs a stack puts on its cluster against the cluster's limit."""

    limit: int
    where: str  # "a standard Confluent Cloud cluster (...)", "settings.acls.limit"
    shared_with_previews: bool  # pr-<n> previews put their ACLs on the same cluster
    admin_acls: int  # the platform admin's own ACLs on that cluster


def acl_budget(settings: StackSettings, *, shares_cluster: bool) -> AclBudget | None:
    """The stack's ACL limit: settings.acls.limit, else the provider's default (None: no limit)."""
    admin_acls = MSK_ADMIN_ACLS if settings.kafka.provider == "msk" else 0
    if settings.acls.limit is not None:
        return AclBudget(settings.acls.limit, "settings.acls.limit", shares_cluster, admin_acls)
    confluent = settings.kafka.confluent
    if settings.kafka.provider == "confluent" and confluent is not None:
        where = f"a {confluent.tier} Confluent Cloud cluster (its default limit; acls.limit overrides it)"
        return AclBudget(CONFLUENT_ACL_LIMITS[confluent.tier], where, shares_cluster, admin_acls)
    return None


def budget_problems(
    settings: StackSettings, access: GrantedAccess, grants: LiteralGrants, *, shares_cluster: bool, file: str
) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings): over the limit fails validate with the count and the ways out;
    a base stack whose previews would take the cluster over it is warned."""
    budget = acl_budget(settings, shares_cluster=shares_cluster)
    if budget is None:
        return [], []
    count = len(access.acls) + budget.admin_acls
    if count > budget.limit:
        return [Problem(file, MODE_PATH, _over_budget(settings, budget, count, grants))], []
    if budget.shared_with_previews and 2 * count > budget.limit:
        warning = (
            f"{count:,} ACLs fit the limit of {budget.limit:,} ({budget.where}), but each pr-<n> "
            f"preview adds its own {len(access.acls):,} on the same cluster: the first preview goes over it"
        )
        return [], [Problem(file, MODE_PATH, warning)]
    return [], []


def _over_budget(settings: StackSettings, budget: AclBudget, count: int, grants: LiteralGrants) -> str:
    mode = settings.acls.mode
    ways: list[str] = []
    if mode == "literal":
        prefixed = len(grants.compacted()) + budget.admin_acls
        fits = "fits" if prefixed <= budget.limit else "still over"
        ways.append(f"`acls: {{mode: prefixed}}` ({prefixed:,} ACLs, {fits})")
    confluent = settings.kafka.confluent
    if settings.kafka.provider == "confluent" and confluent is not None:
        if confluent.tier in RBAC_TIERS:
            ways.append("`acls: {mode: rbac}` (Confluent role bindings, which take no ACLs)")
        else:
            ways.append("a standard or larger cluster with `acls: {mode: rbac}`")
    ways.append("`acls: {limit: <n>}` if your cluster's limit was raised")
    return (
        f"the {mode} plan puts {count:,} ACLs on the cluster; {budget.where} takes {budget.limit:,}: "
        f"a deployment would fail part way. Ways out: {'; '.join(ways)}"
    )
