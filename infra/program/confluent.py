"""Confluent Cloud: environment, cluster, admin identity, one service account per service,
topics and exactly the plan's ACLs or role bindings."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_confluentcloud as confluent

from infra.model.names import PLATFORM_MIRROR, generation_suffix
from infra.model.settings import DELETION_PROTECTION_TIERS, ConfluentSettings
from infra.plan.credential_rotation import Generations
from infra.plan.model import (
    KAFKA_CRN_TOKEN,
    SCHEMA_REGISTRY_OUTPUT,
    AclBinding,
    Plan,
    PlannedTopic,
    RoleBinding,
)
from infra.program.cluster_access import ClusterAccess, ServiceCredentials
from infra.program.confluent_schemas import (
    SERVICE_ACCOUNT_API_VERSION,
    SERVICE_ACCOUNT_KIND,
    ConfluentSchemas,
)
from infra.program.protection import kept

CLUSTER_API_VERSION = "cmk/v2"
CLUSTER_KIND = "Cluster"


# (environment id, cluster id, rbac_crn, REST endpoint, bootstrap endpoint)
ClusterFacts = tuple[
    pulumi.Output[str], pulumi.Output[str], pulumi.Output[str], pulumi.Output[str], pulumi.Output[str]
]


@dataclass(frozen=True)
class ConfluentCluster:
    """The cluster facts topics, ACLs and API keys need; owned here or shared from dev."""

    environment_id: pulumi.Output[str]
    cluster_id: pulumi.Output[str]
    rbac_crn: pulumi.Output[str]
    rest_endpoint: pulumi.Output[str]
    bootstrap_endpoint: pulumi.Output[str]
    admin_api_key: pulumi.Output[str]
    admin_api_secret: pulumi.Output[str]
    admin_id: pulumi.Output[str] | None = None  # the admin service account, where this stack owns it


def shared_cluster(base_stack: str, *, role_bindings: bool) -> ConfluentCluster:
    """A PR preview's view of the dev cluster, read from the dev stack's outputs (its `rbac_crn`
    only when the preview binds roles: a dev stack deployed before rbac mode existed lacks it)."""
    reference = pulumi.StackReference(
        "shared-cluster",
        stack_name=f"{pulumi.get_organization()}/{pulumi.get_project()}/{base_stack}",
    )

    def text(name: str) -> pulumi.Output[str]:
        def present(value: object) -> str:
            if value is None:
                raise pulumi.RunError(
                    f"stack '{base_stack}' has no output '{name}': a pr-<n> preview reuses "
                    f"{base_stack}'s cluster, so deploy {base_stack} first"
                )
            return str(value)

        return reference.get_output(name).apply(present)

    return ConfluentCluster(
        environment_id=text("environment_id"),
        cluster_id=text("cluster_id"),
        rbac_crn=text("rbac_crn") if role_bindings else pulumi.Output.from_input(""),
        rest_endpoint=text("rest_endpoint"),
        bootstrap_endpoint=text("bootstrap_servers"),
        admin_api_key=pulumi.Output.secret(text("admin_api_key")),
        admin_api_secret=pulumi.Output.secret(text("admin_api_secret")),
    )


class ConfluentPlatform(pulumi.ComponentResource):
    """Everything the plan asks of Confluent Cloud for one stack."""

    access: ClusterAccess

    def __init__(
        self, name: str, plan: Plan, generations: Generations, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kafka-platform:confluent:Platform", name, None, opts)
        if plan.cluster.shared_from_stack is not None:
            cluster = shared_cluster(plan.cluster.shared_from_stack, role_bindings=bool(plan.role_bindings))
            exports: dict[str, pulumi.Input[object]] = {}
        else:
            cluster = self._own_cluster(plan)
            admin_key_id: pulumi.Output[str] = pulumi.Output.secret(cluster.admin_api_key)
            # What pr-<n> stacks read through their StackReference to this stack.
            exports = {
                "environment_id": cluster.environment_id,
                "rbac_crn": cluster.rbac_crn,
                "rest_endpoint": cluster.rest_endpoint,
                "admin_api_key": admin_key_id,
                "admin_api_secret": cluster.admin_api_secret,
            }
        credentials = {
            service.name: self._service_identity(plan, service.name, service.principal, cluster, generations)
            for service in plan.services
        }
        # One provider bound to the cluster and the admin key manages every topic and ACL, so
        # the admin secret is not copied into thousands of resources' inputs and state.
        kafka_admin = confluent.Provider(
            "kafka-admin",
            kafka_id=cluster.cluster_id,
            kafka_rest_endpoint=cluster.rest_endpoint,
            kafka_api_key=cluster.admin_api_key,
            kafka_api_secret=cluster.admin_api_secret,
            opts=pulumi.ResourceOptions(parent=self),
        )
        managed = pulumi.ResourceOptions(parent=self, provider=kafka_admin)
        topic_options = kept(plan, self, retain=True).merge(managed)
        principals = {
            name: identity.principal_id.apply(lambda sa_id: f"User:{sa_id}")
            for name, identity in credentials.items()
        }
        topic_ids, acl_ids = import_ids(plan)
        for topic in plan.topics:
            adopt = pulumi.ResourceOptions(import_=topic_ids.get(topic.name))
            topic_resource(topic, topic_options.merge(adopt))
        for acl in plan.acls:
            adopt = pulumi.ResourceOptions(import_=acl_ids.get(acl.adoption_id))
            acl_resource(acl, principals[acl.service], managed.merge(adopt))
        # Role bindings go through the Cloud API (the default provider), not the cluster's.
        kafka_crn = pulumi.Output.all(cluster.rbac_crn, cluster.cluster_id).apply(
            lambda parts: f"{parts[0]}/kafka={parts[1]}"
        )
        for binding in plan.role_bindings:
            role_binding_resource(binding, principals[binding.service], kafka_crn, self)
        mirror = self._mirror_login(plan, cluster, managed)
        # A pr-<n> preview shares dev's cluster and has no admin of its own to register with.
        schemas = None
        if plan.subjects and cluster.admin_id is not None:
            schemas = ConfluentSchemas(
                plan,
                cluster.environment_id,
                cluster.admin_id,
                {name: identity.principal_id for name, identity in credentials.items()},
                pulumi.ResourceOptions(parent=self),
            )
            exports[SCHEMA_REGISTRY_OUTPUT] = schemas.endpoint
        self.access = ClusterAccess(
            bootstrap_servers=cluster.bootstrap_endpoint.apply(strip_scheme),
            cluster_id=cluster.cluster_id,
            credentials=credentials,
            exports=exports,
            registry_endpoint=schemas.endpoint if schemas is not None else None,
            registry_logins=schemas.logins if schemas is not None else {},
            mirror=mirror,
        )
        self.register_outputs({"cluster_id": cluster.cluster_id})

    def _own_cluster(self, plan: Plan) -> ConfluentCluster:
        settings = plan.cluster.provider_settings
        if not isinstance(settings, ConfluentSettings) or plan.cluster.admin_principal is None:
            raise ValueError("a Confluent stack that owns its cluster needs its Confluent settings")
        if settings.existing_cluster is not None:
            environment_id, cluster_id, rbac_crn, rest, bootstrap = self._existing_cluster(settings)
        else:
            environment_id, cluster_id, rbac_crn, rest, bootstrap = self._new_cluster(plan, settings)
        admin = confluent.ServiceAccount(
            "admin",
            display_name=plan.cluster.admin_principal,
            description="Manages topics and ACLs for kafka-platform; used by Pulumi only.",
            opts=kept(plan, self),
        )
        binding = confluent.RoleBinding(
            "admin-cluster-admin",
            principal=admin.id.apply(lambda sa_id: f"User:{sa_id}"),
            role_name="CloudClusterAdmin",
            crn_pattern=rbac_crn,
            opts=pulumi.ResourceOptions(parent=self),
        )
        admin_key = confluent.ApiKey(
            "admin-api-key",
            display_name=plan.cluster.admin_principal,
            description="kafka-platform admin key (topics and ACLs)",
            owner=confluent.ApiKeyOwnerArgs(
                id=admin.id, api_version=SERVICE_ACCOUNT_API_VERSION, kind=SERVICE_ACCOUNT_KIND
            ),
            managed_resource=_managed_cluster(cluster_id, environment_id),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[binding]),
        )
        return ConfluentCluster(
            environment_id=environment_id,
            cluster_id=cluster_id,
            rbac_crn=rbac_crn,
            rest_endpoint=rest,
            bootstrap_endpoint=bootstrap,
            admin_api_key=admin_key.id,
            admin_api_secret=admin_key.secret,
            admin_id=admin.id,
        )

    def _existing_cluster(self, settings: ConfluentSettings) -> ClusterFacts:
        """A cluster that already runs: read, never managed (nothing of it can be deleted here)."""
        existing = settings.existing_cluster
        assert existing is not None
        cluster = confluent.get_kafka_cluster_output(
            id=existing.cluster_id,
            environment=confluent.GetKafkaClusterEnvironmentArgs(id=existing.environment_id),
            opts=pulumi.InvokeOptions(parent=self),
        )
        return (
            pulumi.Output.from_input(existing.environment_id),
            pulumi.Output.from_input(existing.cluster_id),
            cluster.rbac_crn,
            cluster.rest_endpoint,
            cluster.bootstrap_endpoint,
        )

    def _new_cluster(self, plan: Plan, settings: ConfluentSettings) -> ClusterFacts:
        display = f"{plan.domain}-{plan.environment}"
        environment = confluent.Environment(
            "environment",
            display_name=settings.environment_display_name or display,
            opts=kept(plan, self),
        )
        tiers: dict[str, object] = {
            "basic": {"basic": confluent.KafkaClusterBasicArgs()},
            "standard": {"standard": confluent.KafkaClusterStandardArgs()},
            "enterprise": {"enterprises": [confluent.KafkaClusterEnterpriseArgs()]},
            "dedicated": {"dedicated": confluent.KafkaClusterDedicatedArgs(cku=settings.ckus or 1)},
        }
        # Confluent offers deletion protection on enterprise and dedicated clusters only; on
        # basic and standard, Pulumi's `protect` is what guards the cluster.
        deletion_protection = plan.protection.protect and settings.tier in DELETION_PROTECTION_TIERS
        cluster = confluent.KafkaCluster(
            "cluster",
            display_name=display,
            availability=settings.availability,
            cloud=settings.cloud,
            region=settings.region,
            environment=confluent.KafkaClusterEnvironmentArgs(id=environment.id),
            deletion_protection=True if deletion_protection else None,
            **tiers[settings.tier],  # type: ignore[arg-type]
            opts=kept(plan, self),
        )
        return environment.id, cluster.id, cluster.rbac_crn, cluster.rest_endpoint, cluster.bootstrap_endpoint

    def _service_identity(
        self, plan: Plan, service: str, principal: str, cluster: ConfluentCluster, generations: Generations
    ) -> ServiceCredentials:
        adopted = plan.adoption.service_accounts.get(service)
        # An adopted account keeps its name and description: importing must not rename it.
        adopt = pulumi.ResourceOptions(
            import_=adopted, ignore_changes=["displayName", "description"] if adopted else None
        )
        account = confluent.ServiceAccount(
            f"sa-{service}",
            display_name=principal,
            description=f"kafka-platform principal of service '{service}' in {plan.environment}",
            opts=kept(plan, self).merge(adopt),
        )

        def api_key(generation: int) -> confluent.ApiKey:
            # Rotation gives the same account a second key; the previous one lives out the overlap.
            return self._cluster_api_key(
                f"api-key-{service}{generation_suffix(generation)}",
                principal,
                f"Kafka API key of service '{service}'"
                + (f" (credential generation {generation})" if generation > 1 else ""),
                account,
                cluster,
            )

        key = api_key(generations.current)
        if generations.previous is not None:
            api_key(generations.previous)
        return api_key_login(key, account)

    def _mirror_login(
        self, plan: Plan, cluster: ConfluentCluster, managed: pulumi.ResourceOptions
    ) -> ServiceCredentials | None:
        """A migration's MirrorMaker 2 on this cluster: an account of its own, its API key and
        exactly the plan's target-side ACLs, also in rbac mode (see docs/migration.md). Never
        protected: they go with the migration, which the preflight lets a protected stack end
        only when allowed."""
        migration = plan.migration
        if migration is None:
            return None
        side = migration.target
        account = confluent.ServiceAccount(
            f"sa-{PLATFORM_MIRROR}",
            display_name=side.principal,
            description=f"kafka-platform MirrorMaker 2 of the migration into {plan.environment}",
            opts=pulumi.ResourceOptions(parent=self),
        )
        key = self._cluster_api_key(
            f"api-key-{PLATFORM_MIRROR}",
            side.principal,
            "Kafka API key of the migration's MirrorMaker 2",
            account,
            cluster,
        )
        principal = account.id.apply(lambda sa_id: f"User:{sa_id}")
        for acl in side.acls:
            acl_resource(acl, principal, managed)
        return api_key_login(key, account)

    def _cluster_api_key(
        self,
        name: str,
        display_name: str,
        description: str,
        account: confluent.ServiceAccount,
        cluster: ConfluentCluster,
    ) -> confluent.ApiKey:
        return confluent.ApiKey(
            name,
            display_name=display_name,
            description=description,
            owner=confluent.ApiKeyOwnerArgs(
                id=account.id, api_version=SERVICE_ACCOUNT_API_VERSION, kind=SERVICE_ACCOUNT_KIND
            ),
            managed_resource=_managed_cluster(cluster.cluster_id, cluster.environment_id),
            opts=pulumi.ResourceOptions(parent=self),
        )


def api_key_login(key: confluent.ApiKey, account: confluent.ServiceAccount) -> ServiceCredentials:
    """An API key as a SASL PLAIN login: the key id is the username, its secret the password."""
    return ServiceCredentials(
        username=key.id,
        password=pulumi.Output.secret(key.secret),
        principal_id=account.id,
        version=key.id,  # a new key is a new id
    )


def _managed_cluster(
    cluster_id: pulumi.Input[str], environment_id: pulumi.Input[str]
) -> confluent.ApiKeyManagedResourceArgs:
    return confluent.ApiKeyManagedResourceArgs(
        id=cluster_id,
        api_version=CLUSTER_API_VERSION,
        kind=CLUSTER_KIND,
        environment=confluent.ApiKeyManagedResourceEnvironmentArgs(id=environment_id),
    )


def topic_resource(topic: PlannedTopic, opts: pulumi.ResourceOptions | None) -> confluent.KafkaTopic:
    return confluent.KafkaTopic(
        topic.name,
        topic_name=topic.name,
        partitions_count=topic.partitions,
        config=topic.config,
        opts=opts,
    )


def acl_resource(
    acl: AclBinding, principal: pulumi.Input[str], opts: pulumi.ResourceOptions | None
) -> confluent.KafkaAcl:
    return confluent.KafkaAcl(
        acl.logical_name,
        resource_type=acl.resource_type,
        # The SDK renames the ACL's `resource_name` input: it clashes with Pulumi's logical name.
        resource_name_=acl.resource_name,
        pattern_type=acl.pattern_type,
        principal=principal,
        host=acl.host,
        operation=acl.operation,
        permission=acl.permission,
        opts=opts,
    )


def role_binding_resource(
    binding: RoleBinding,
    principal: pulumi.Input[str],
    kafka_crn: pulumi.Output[str],
    parent: pulumi.Resource,
) -> confluent.RoleBinding:
    return confluent.RoleBinding(
        binding.logical_name,
        principal=principal,
        role_name=binding.role,
        crn_pattern=kafka_crn.apply(lambda crn: binding.crn_pattern.replace(KAFKA_CRN_TOKEN, crn)),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def import_ids(plan: Plan) -> tuple[dict[str, str], dict[str, str]]:
    """Confluent's import ids of what settings.adopt lists: by topic name, by ACL adoption id."""
    settings = plan.cluster.provider_settings
    if not isinstance(settings, ConfluentSettings) or settings.existing_cluster is None:
        return {}, {}
    cluster = settings.existing_cluster.cluster_id
    adoption = plan.adoption
    topics = {name: f"{cluster}/{name}" for name in adoption.topics}
    acls = {
        acl.adoption_id: acl_import_id(cluster, acl, adoption.service_accounts[acl.service])
        for acl in plan.acls
        if acl.adoption_id in adoption.acls
    }
    return topics, acls


def acl_import_id(cluster_id: str, acl: AclBinding, service_account: str) -> str:
    """Confluent's ACL id: <cluster>/<type>#<name>#<pattern>#<principal>#<host>#<operation>#<permission>."""
    fields = [acl.resource_type, acl.resource_name, acl.pattern_type, f"User:{service_account}"]
    return f"{cluster_id}/" + "#".join([*fields, acl.host, acl.operation, acl.permission])


def strip_scheme(endpoint: str) -> str:
    """Confluent reports ``SASL_SSL://host:9092``; clients want ``host:9092``."""
    return endpoint.split("://", 1)[-1]
