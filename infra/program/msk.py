"""AWS MSK: a provisioned cluster with SASL/SCRAM and enforced ACLs, one SCRAM user per
service (password in a KMS-encrypted `AmazonMSK_` secret), topics and the plan's ACLs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kafka as kafka
import pulumi_random as random

from infra.model.names import PLATFORM_MIRROR, generation_suffix
from infra.model.settings import MskSettings
from infra.plan.credential_rotation import Generations
from infra.plan.model import CLUSTER_RESOURCE_NAME, Plan
from infra.program.cluster_access import ClusterAccess, ServiceCredentials
from infra.program.kafka_admin import (
    AdminConnection,
    manage_mirror_access,
    manage_service_access,
    manage_topics,
)
from infra.program.monitoring import cloudwatch_lag_alarms
from infra.program.previous_deployment import SERVICES_OUTPUT, PreviousDeployment
from infra.program.protection import kept

SCRAM_SECRET_PREFIX = (
    "AmazonMSK_"  # pragma: allowlist secret - MSK only associates secrets whose name starts so
)
SERVER_PROPERTIES = {
    "auto.create.topics.enable": "false",
    "allow.everyone.if.no.acl.found": "false",
}
# What the platform's admin identity needs, in the order it is granted (MSK has no super.users).
# While `acl_bootstrap` lets everyone do what no ACL mentions, the first ACL on the cluster
# resource takes that away for the cluster. Cluster ALTER goes first and alone: it lets the admin
# create ACLs and, through the DESCRIBE it implies, list them, so a first run interrupted after
# it can always finish. Anything else first (e.g. DESCRIBE) would lock the admin out for good.
ADMIN_BOOTSTRAP_GRANT = ("Cluster", CLUSTER_RESOURCE_NAME, "Literal", "Alter")
# Then the topics under the domain: CREATE, DELETE, ALTER and ALTER_CONFIGS (which imply
# DESCRIBE and DESCRIBE_CONFIGS).
ADMIN_TOPIC_OPERATIONS = ("Create", "Delete", "Alter", "AlterConfigs")


def server_properties(acl_bootstrap: bool) -> str:
    properties = dict(SERVER_PROPERTIES)
    if acl_bootstrap:
        # One-time first deployment: lets the admin create its own ACLs (docs/deploying.md, "AWS MSK").
        properties["allow.everyone.if.no.acl.found"] = "true"
    return "".join(f"{key}={value}\n" for key, value in sorted(properties.items()))


def configuration_name(display: str, kafka_version: str) -> str:
    """A version change replaces the configuration (its Kafka versions cannot change in place),
    and the replacement is created before the old one is deleted, so the two must not share a
    name (hashicorp/terraform-provider-aws#12724)."""
    return f"{display}-kafka-{kafka_version.replace('.', '-')}"


def secret_name(principal: str) -> str:
    return f"{SCRAM_SECRET_PREFIX}{principal}"


@dataclass(frozen=True)
class MskScramSecret:
    secret_arn: pulumi.Output[str]
    version: aws.secretsmanager.SecretVersion
    credentials: ServiceCredentials


class MskPlatform(pulumi.ComponentResource):
    """Everything the plan asks of AWS MSK for one stack."""

    access: ClusterAccess

    def __init__(
        self,
        name: str,
        plan: Plan,
        generations: Generations,
        previous: PreviousDeployment,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kafka-platform:msk:Platform", name, None, opts)
        settings = plan.cluster.provider_settings
        if not isinstance(settings, MskSettings) or plan.cluster.admin_principal is None:
            raise ValueError("an MSK stack needs its MSK settings")
        display = f"{plan.domain}-{plan.environment}"
        child = pulumi.ResourceOptions(parent=self)

        self.key = aws.kms.Key(
            "kms-key",
            description=f"{display}: MSK storage and SCRAM secrets",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=kept(plan, self),
        )
        configuration = aws.msk.Configuration(
            "configuration",
            name=configuration_name(display, settings.kafka_version),
            kafka_versions=[settings.kafka_version],
            server_properties=server_properties(settings.acl_bootstrap),
            opts=child,
        )
        self.cluster = self._cluster(plan, settings, display, configuration)

        admin = self._scram_user(plan, "admin", plan.cluster.admin_principal)
        services = {
            service.name: self._scram_user(plan, service.name, service.principal, generations.current)
            for service in plan.services
        }
        # While a rotation overlaps, the previous generation's users stay associated and valid.
        old = generations.previous
        overlapping = [
            self._scram_user(plan, service.name, plan.principal_at(service.name, old), old, current=False)
            for service in plan.services
            if old is not None
        ]
        # A migration's MirrorMaker 2 login (settings.migration); unprotected, it goes with the migration.
        mirror = (
            self._scram_user(plan, PLATFORM_MIRROR, plan.migration.target.principal, current=False)
            if plan.migration is not None
            else None
        )
        users = [admin, *services.values(), *overlapping, *([mirror] if mirror is not None else [])]
        # A service leaving a protected stack (allow_deletes, checked in the preflight): its secret
        # is registered once more, unprotected and out of the association (so detached), and the
        # next run deletes it; at once it would be a protected resource to delete.
        if plan.protection.protect:
            for retired in sorted(set(previous.names(SERVICES_OUTPUT) or ()) - set(services)):
                principal = plan.principal_at(retired, generations.current)
                self._scram_user(plan, retired, principal, generations.current, current=False)
        # One exclusive association: SCRAM secrets not listed here are detached from the cluster.
        association = aws.msk.ScramSecretAssociation(
            "scram-users",
            cluster_arn=self.cluster.arn,
            secret_arn_lists=[user.secret_arn for user in users],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[user.version for user in users]),
        )
        # Inside the VPC (port 9096), or over public access (9196) for a runner outside it.
        admin_bootstrap = (
            self.cluster.bootstrap_brokers_public_sasl_scram
            if settings.access == "public"
            else self.cluster.bootstrap_brokers_sasl_scram
        )
        connection = AdminConnection(
            bootstrap_servers=admin_bootstrap.apply(lambda servers: servers.split(",")),
            username=plan.cluster.admin_principal,
            password=admin.credentials.password,
            sasl_mechanism="SCRAM-SHA-512",
            tls=True,
        )
        admin_acls = self._admin_acls(
            plan,
            plan.cluster.admin_principal,
            admin_provider("kafka-admin", connection, parent=self, after=[association]),
        )
        # The admin identity is usable only once its grants exist.
        manage_topics(plan, connection, self, previous, after=admin_acls)
        manage_service_access(plan, connection, self, generations, previous, after=admin_acls)
        if plan.migration is not None:
            manage_mirror_access(plan.migration.target, connection, self, user=None, after=admin_acls)
        if plan.monitoring.cloudwatch_alarms:
            cloudwatch_lag_alarms(plan, self.cluster.cluster_name, pulumi.ResourceOptions(parent=self))

        self.access = ClusterAccess(
            # Services run inside the VPC: they always get the private SCRAM endpoint.
            bootstrap_servers=self.cluster.bootstrap_brokers_sasl_scram,
            cluster_id=self.cluster.arn,
            credentials={name: user.credentials for name, user in services.items()},
            exports={"kms_key_arn": self.key.arn},
            mirror=mirror.credentials if mirror is not None else None,
        )
        self.register_outputs({"cluster_arn": self.cluster.arn})

    def _cluster(
        self, plan: Plan, settings: MskSettings, display: str, configuration: aws.msk.Configuration
    ) -> aws.msk.Cluster:
        logging = None
        if settings.logging is not None:
            logging = aws.msk.ClusterLoggingInfoArgs(
                broker_logs=aws.msk.ClusterLoggingInfoBrokerLogsArgs(
                    cloudwatch_logs=aws.msk.ClusterLoggingInfoBrokerLogsCloudwatchLogsArgs(
                        enabled=True, log_group=settings.logging.cloudwatch_log_group
                    )
                )
            )
        # Always explicit: the provider's connectivity_info is optional and computed, so leaving
        # it out after `public` would keep public access on (terraform-provider-aws
        # internal/service/kafka/cluster.go). AWS refuses public access on create; `preflight`
        # makes sure the cluster already exists.
        connectivity = aws.msk.ClusterBrokerNodeGroupInfoConnectivityInfoArgs(
            public_access=aws.msk.ClusterBrokerNodeGroupInfoConnectivityInfoPublicAccessArgs(
                type="SERVICE_PROVIDED_EIPS" if settings.access == "public" else "DISABLED"
            )
        )
        return aws.msk.Cluster(
            "cluster",
            cluster_name=display,
            kafka_version=settings.kafka_version,
            number_of_broker_nodes=settings.broker_count,
            broker_node_group_info=aws.msk.ClusterBrokerNodeGroupInfoArgs(
                instance_type=settings.instance_type,
                client_subnets=settings.subnet_ids,
                security_groups=settings.security_group_ids,
                connectivity_info=connectivity,
                storage_info=aws.msk.ClusterBrokerNodeGroupInfoStorageInfoArgs(
                    ebs_storage_info=aws.msk.ClusterBrokerNodeGroupInfoStorageInfoEbsStorageInfoArgs(
                        volume_size=settings.volume_size_gib
                    )
                ),
            ),
            client_authentication=aws.msk.ClusterClientAuthenticationArgs(
                sasl=aws.msk.ClusterClientAuthenticationSaslArgs(scram=True),
                unauthenticated=False,
            ),
            encryption_info=aws.msk.ClusterEncryptionInfoArgs(
                encryption_at_rest_kms_key_arn=self.key.arn,
                encryption_in_transit=aws.msk.ClusterEncryptionInfoEncryptionInTransitArgs(
                    client_broker="TLS", in_cluster=True
                ),
            ),
            configuration_info=aws.msk.ClusterConfigurationInfoArgs(
                arn=configuration.arn, revision=configuration.latest_revision
            ),
            logging_info=logging,
            opts=kept(plan, self),
        )

    def _scram_user(
        self, plan: Plan, name: str, principal: str, generation: int = 1, *, current: bool = True
    ) -> MskScramSecret:
        """A SCRAM user's secret; ``current`` False: a previous generation, unprotected so the
        deployment after the overlap can revoke it."""
        child = pulumi.ResourceOptions(parent=self)
        suffix = generation_suffix(generation)
        password = random.RandomPassword(
            f"scram-password-{name}{suffix}", length=32, special=False, opts=child
        )
        secret = aws.secretsmanager.Secret(
            f"scram-secret-{name}{suffix}",
            name=secret_name(principal),
            description=f"MSK SCRAM credentials of {principal}",
            kms_key_id=self.key.arn,
            recovery_window_in_days=7 if plan.protection.protect else 0,
            opts=kept(plan, self) if current else child,
        )
        version = aws.secretsmanager.SecretVersion(
            f"scram-secret-value-{name}{suffix}",
            secret_id=secret.id,
            secret_string=pulumi.Output.json_dumps({"username": principal, "password": password.result}),
            opts=child,
        )
        aws.secretsmanager.SecretPolicy(
            f"scram-secret-policy-{name}{suffix}",
            secret_arn=secret.arn,
            policy=secret.arn.apply(msk_secret_policy),
            opts=child,
        )
        return MskScramSecret(
            secret_arn=secret.arn,
            version=version,
            credentials=ServiceCredentials(
                username=pulumi.Output.from_input(principal),
                password=pulumi.Output.secret(password.result),
                principal_id=pulumi.Output.from_input(principal),
                version=version.version_id,  # a new password is a new secret version
            ),
        )

    def _admin_acls(self, plan: Plan, principal: str, provider: kafka.Provider) -> list[pulumi.Resource]:
        options = pulumi.ResourceOptions(parent=self, provider=provider)

        def grant(
            resource_type: str, resource_name: str, pattern: str, operation: str, opts: pulumi.ResourceOptions
        ) -> kafka.Acl:
            return kafka.Acl(
                f"admin-acl-{resource_type.lower()}-{operation.lower()}",
                acl_resource_type=resource_type,
                acl_resource_name=resource_name,
                resource_pattern_type_filter=pattern,
                acl_operation=operation,
                acl_permission_type="Allow",
                acl_principal=f"User:{principal}",
                acl_host="*",
                opts=opts,
            )

        first = grant(*ADMIN_BOOTSTRAP_GRANT, options)
        after_first = options.merge(pulumi.ResourceOptions(depends_on=[first]))
        topics = plan.name_prefix + plan.domain + "."
        rest = [
            grant("Topic", topics, "Prefixed", operation, after_first) for operation in ADMIN_TOPIC_OPERATIONS
        ]
        return [first, *rest]


# terraform-provider-kafka's names for the SASL mechanisms (`sasl_mechanism`).
PROVIDER_MECHANISMS = {"SCRAM-SHA-512": "scram-sha512", "SCRAM-SHA-256": "scram-sha256", "PLAIN": "plain"}


def admin_provider(
    name: str, connection: AdminConnection, parent: pulumi.Resource, after: Sequence[pulumi.Resource] = ()
) -> kafka.Provider:
    """The bridged `kafka` provider, for the admin's own bootstrap grants only: they must exist,
    in order, before anything else can reach the cluster through the admin identity."""
    return kafka.Provider(
        name,
        bootstrap_servers=connection.bootstrap_servers,
        sasl_username=connection.username,
        sasl_password=connection.password,
        sasl_mechanism=PROVIDER_MECHANISMS[connection.sasl_mechanism],
        tls_enabled=connection.tls,
        ca_cert=connection.ca_cert,
        skip_tls_verify=connection.skip_tls_verify or None,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(after)),
    )


def msk_secret_policy(secret_arn: str) -> str:
    """The resource policy MSK needs to read a SCRAM secret."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AWSKafkaResourcePolicy",
                    "Effect": "Allow",
                    "Principal": {"Service": "kafka.amazonaws.com"},
                    "Action": "secretsmanager:getSecretValue",
                    "Resource": secret_arn,
                }
            ],
        },
        sort_keys=True,
    )
