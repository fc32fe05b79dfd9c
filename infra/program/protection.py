"""Prod safety: protect what matters and keep topics when Pulumi lets go of them.

Refusing unplanned deletions happens earlier, in `preflight`, before anything is registered.
"""

from __future__ import annotations

import pulumi

from infra.plan.model import Plan


def kept(plan: Plan, parent: pulumi.Resource, *, retain: bool = False) -> pulumi.ResourceOptions:
    """Options for a resource whose loss would hurt: clusters, topics, service accounts."""
    protect = plan.protection.protect
    return pulumi.ResourceOptions(parent=parent, protect=protect, retain_on_delete=protect and retain)
