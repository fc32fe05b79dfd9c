"""A migration's source cluster (settings.migration.source), through the same Admin-API providers
as an existing cluster, logged in as the source's admin (`kafka-platform:migrationSourceAdminPassword`):

- per service, its SCRAM user (the same principal name as on the target, a password of its own)
  and the same least-privilege ACLs as on the target. Retained on delete: finishing the migration
  never revokes them, the source goes away whole;
- MirrorMaker 2's principal with exactly its read-only source grants, removed with the migration.

Topics on the source are the old cluster's own: never created or changed here (the preflight
names a planned topic the source lacks).
"""

from __future__ import annotations

from pathlib import Path

import pulumi

from infra.model.migration_settings import MIGRATION_SOURCE_PASSWORD_NAME
from infra.model.names import PLATFORM_MIRROR
from infra.model.stacks import MIGRATION_SOURCE_PASSWORD_KEY, PROJECT
from infra.plan.credential_rotation import Generations
from infra.plan.model import Plan
from infra.program.cluster_access import ClusterAccess, ServiceCredentials
from infra.program.kafka_admin import (
    ScramUser,
    ServiceAccess,
    existing_cluster_connection,
    manage_mirror_access,
    mirror_login,
    plan_acl_text,
    scram_login,
    scram_password,
    service_scram_users,
)

SOURCE_PREFIX = "source-"


class MigrationSource(pulumi.ComponentResource):
    """The services' users and grants, and the mirror's, on the cluster they are leaving."""

    access: ClusterAccess  # the source's address and each service's login there

    def __init__(
        self,
        name: str,
        plan: Plan,
        generations: Generations,
        project_dir: Path,
        *,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kafka-platform:kafka:MigrationSource", name, None, opts)
        migration = plan.migration
        if migration is None:
            raise ValueError(f"stack '{plan.stack}' has no settings.migration")
        admin_password = pulumi.Config(PROJECT).require_secret(MIGRATION_SOURCE_PASSWORD_NAME)
        connection = existing_cluster_connection(
            migration.source_settings, admin_password, MIGRATION_SOURCE_PASSWORD_KEY, project_dir
        )
        mechanism = migration.source_settings.sasl_mechanism
        # Never deleted by Pulumi: the users and grants go with the source cluster.
        retained = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        credentials: dict[str, ServiceCredentials] = {}
        for service in plan.services:
            users = service_scram_users(
                self, plan, service.name, generations, mechanism, prefix=SOURCE_PREFIX
            )
            acls = [
                plan_acl_text(acl, principal)
                for acl in plan.acls
                if acl.service == service.name
                for principal in users
            ]
            access = ServiceAccess(
                service.name,
                list(users),
                acls,
                connection,
                users=users,
                adopt_users=migration.adopt_users,
                resource_prefix=SOURCE_PREFIX,
                opts=retained,
            )
            username = plan.principal_at(service.name, generations.current)
            version = f"{SOURCE_PREFIX}{username}#{generations.current}"
            credentials[service.name] = scram_login(access, username, users[username], version)
        mirror_user = ScramUser(mechanism, scram_password(self, PLATFORM_MIRROR, prefix=SOURCE_PREFIX))
        mirror_access = manage_mirror_access(
            migration.source, connection, self, user=mirror_user, resource_prefix=SOURCE_PREFIX
        )
        principal = migration.source.principal
        self.access = ClusterAccess(
            bootstrap_servers=pulumi.Output.from_input(migration.source.bootstrap),
            cluster_id=pulumi.Output.from_input(migration.source.bootstrap),
            credentials=credentials,
            mirror=mirror_login(mirror_access, principal, mirror_user),
        )
        self.register_outputs({"bootstrap_servers": migration.source.bootstrap})
