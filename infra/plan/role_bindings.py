"""`acls.mode: rbac`: a service's grants as Confluent Cloud role bindings instead of ACLs.

Each resource a service's ACLs name becomes the least role that covers what they allow there
(Confluent's predefined roles): DeveloperRead for READ on a topic or group, DeveloperWrite for
WRITE on a topic or transactional id, and ResourceOwner where the service also creates and
deletes topics (a Streams application's "<application.id>-" topics). Confluent's CRNs name a
prefix by ending it in "*".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from infra.plan.model import AclBinding, Operation, PatternType, RbacResourceType, RbacRole, RoleBinding

RBAC_RESOURCE_TYPES: dict[str, RbacResourceType] = {
    "TOPIC": "topic",
    "GROUP": "group",
    "TRANSACTIONAL_ID": "transactional-id",
}
# What each role allows, in ACL operations (DESCRIBE comes with READ and WRITE on Kafka anyway).
ROLE_OPERATIONS: dict[RbacRole, frozenset[Operation]] = {
    "DeveloperRead": frozenset({"READ", "DESCRIBE"}),
    "DeveloperWrite": frozenset({"WRITE", "DESCRIBE"}),
    "ResourceOwner": frozenset({"READ", "WRITE", "CREATE", "DELETE", "DESCRIBE"}),
}
OWNER_OPERATIONS: frozenset[Operation] = frozenset({"CREATE", "DELETE"})
DEVELOPER_ROLES: tuple[RbacRole, ...] = ("DeveloperRead", "DeveloperWrite")


def role_bindings_for(acls: Iterable[AclBinding]) -> list[RoleBinding]:
    """The role bindings that give each principal what its ACLs give it, per resource."""
    by_resource: dict[tuple[str, str, str, PatternType], list[AclBinding]] = defaultdict(list)
    for acl in acls:
        if acl.resource_type not in RBAC_RESOURCE_TYPES:
            raise ValueError(f"{acl.logical_name}: no Confluent role stands for a {acl.resource_type} ACL")
        by_resource[(acl.principal, acl.resource_type, acl.resource_name, acl.pattern_type)].append(acl)

    bindings: list[RoleBinding] = []
    for resource_acls in by_resource.values():
        operations = {acl.operation for acl in resource_acls}
        bindings += [
            RoleBinding.of(resource_acls[0], role, RBAC_RESOURCE_TYPES[resource_acls[0].resource_type])
            for role in least_roles(operations)
        ]
    return sorted(bindings, key=lambda binding: binding.sort_key)


def least_roles(operations: set[Operation]) -> list[RbacRole]:
    """The fewest predefined roles that allow ``operations`` on one resource."""
    roles: list[RbacRole]
    if OWNER_OPERATIONS & operations:
        roles = ["ResourceOwner"]
    else:
        roles = [role for role in DEVELOPER_ROLES if operations & (ROLE_OPERATIONS[role] - {"DESCRIBE"})]
    allowed = frozenset[Operation]().union(*(ROLE_OPERATIONS[role] for role in roles))
    if not operations <= allowed:
        raise ValueError(f"no predefined role allows {sorted(operations - allowed)}")
    return roles
