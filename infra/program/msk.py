"""AWS MSK: a provisioned cluster with SASL/SCRAM and enforced ACLs, one SCRAM user per
service (password in a KMS-encrypted `AmazonMSK_` secret), topics and the plan's ACLs."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kafka as kafka
import pulumi_random as random

from infra.plan import AclBinding, Plan, PlannedTopic
from infra.program.cluster_access import ClusterAccess, ServiceCredentials
from infra.program.confluent import acl_resource_name
from infra.program.protection import kept

SCRAM_SECRET_PREFIX = (
    "AmazonMSK_"  # pragma: allowlist secret - MSK only associates secrets whose name starts so
)
SERVER_PROPERTIES = {
    "auto.create.topics.enable": "false",
    "allow.everyone.if.no.acl.found": "false",
}
ACL_RESOURCE_TYPES = {
    "TOPIC": "Topic",
    "GROUP": "Group",
    "CLUSTER": "Cluster",
    "TRANSACTIONAL_ID": "TransactionalID",
}
ACL_OPERATIONS = {
    "READ": "Read",
    "WRITE": "Write",
    "DESCRIBE": "Describe",
    "IDEMPOTENT_WRITE": "IdempotentWrite",
}
# What the platform's own admin identity needs to manage topics and ACLs, on the cluster
# and on the domain's topics only (MSK has no super.users).
ADMIN_CLUSTER_OPERATIONS = ("Describe", "Alter", "Create")
ADMIN_TOPIC_OPERATIONS = ("Create", "Delete", "Describe", "DescribeConfigs", "Alter", "AlterConfigs")


def server_properties(acl_bootstrap: bool) -> str:
    properties = dict(SERVER_PROPERTIES)
    if acl_bootstrap:
        # One-time first deployment: lets the admin create its own ACLs (see README).
        properties["allow.everyone.if.no.acl.found"] = "true"
    return "".join(f"{key}={value}\n" for key, value in sorted(properties.items()))


def secret_name(principal: str) -> str:
    return f"{SCRAM_SECRET_PREFIX}{principal}"


@dataclass(frozen=True)
class ScramUser:
    secret_arn: pulumi.Output[str]
    version: aws.secretsmanager.SecretVersion
    credentials: ServiceCredentials


class MskPlatform(pulumi.ComponentResource):
    """Everything the plan asks of AWS MSK for one stack."""

    access: ClusterAccess

    def __init__(self, name: str, plan: Plan, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kafka-platform:msk:Platform", name, None, opts)
        sizing = plan.cluster.sizing or {}
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
            name=f"{display}-kafka-platform",
            kafka_versions=[sizing["kafka_version"]],
            server_properties=server_properties(bool(sizing.get("acl_bootstrap"))),
            opts=child,
        )
        logging = None
        if sizing.get("logging"):
            logging = aws.msk.ClusterLoggingInfoArgs(
                broker_logs=aws.msk.ClusterLoggingInfoBrokerLogsArgs(
                    cloudwatch_logs=aws.msk.ClusterLoggingInfoBrokerLogsCloudwatchLogsArgs(
                        enabled=True, log_group=sizing["logging"]["cloudwatch_log_group"]
                    )
                )
            )
        self.cluster = aws.msk.Cluster(
            "cluster",
            cluster_name=display,
            kafka_version=sizing["kafka_version"],
            number_of_broker_nodes=sizing["broker_count"],
            broker_node_group_info=aws.msk.ClusterBrokerNodeGroupInfoArgs(
                instance_type=sizing["instance_type"],
                client_subnets=sizing["subnet_ids"],
                security_groups=sizing["security_group_ids"],
                storage_info=aws.msk.ClusterBrokerNodeGroupInfoStorageInfoArgs(
                    ebs_storage_info=aws.msk.ClusterBrokerNodeGroupInfoStorageInfoEbsStorageInfoArgs(
                        volume_size=sizing["volume_size_gib"]
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

        admin_principal = f"{plan.domain}-platform-admin-{plan.environment}"
        admin = self._scram_user(plan, "admin", admin_principal)
        services = {
            service.name: self._scram_user(plan, service.name, service.principal) for service in plan.services
        }
        users = [admin, *services.values()]
        # One exclusive association: SCRAM secrets not listed here are detached from the cluster.
        association = aws.msk.ScramSecretAssociation(
            "scram-users",
            cluster_arn=self.cluster.arn,
            secret_arn_lists=[user.secret_arn for user in users],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[user.version for user in users]),
        )
        bootstrap = self.cluster.bootstrap_brokers_sasl_scram
        bootstrap_list = bootstrap.apply(lambda servers: servers.split(","))

        def admin_provider(name: str, after: list[pulumi.Resource]) -> kafka.Provider:
            return kafka.Provider(
                name,
                bootstrap_servers=bootstrap_list,
                sasl_username=admin_principal,
                sasl_password=admin.credentials.password,
                sasl_mechanism="scram-sha512",
                tls_enabled=True,
                opts=pulumi.ResourceOptions(parent=self, depends_on=after),
            )

        admin_acls = self._admin_acls(
            plan,
            admin_principal,
            pulumi.ResourceOptions(parent=self, provider=admin_provider("kafka-admin", [association])),
        )
        # The same admin identity, usable only once its grants exist: every topic and service ACL
        # goes through it, so each waits for the admin ACLs without listing them all.
        granted_admin = admin_provider("kafka-admin-granted", admin_acls)
        acl_options = pulumi.ResourceOptions(parent=self, provider=granted_admin)
        topic_options = kept(plan, self, retain=True).merge(acl_options)
        for topic in plan.topics:
            topic_resource(topic, topic_options)
        for acl in plan.acls:
            acl_resource(acl, acl_options)

        self.access = ClusterAccess(
            bootstrap_servers=bootstrap,
            cluster_id=self.cluster.arn,
            credentials={name: user.credentials for name, user in services.items()},
            exports={"kms_key_arn": self.key.arn},
        )
        self.register_outputs({"cluster_arn": self.cluster.arn})

    def _scram_user(self, plan: Plan, name: str, principal: str) -> ScramUser:
        child = pulumi.ResourceOptions(parent=self)
        password = random.RandomPassword(f"scram-password-{name}", length=32, special=False, opts=child)
        secret = aws.secretsmanager.Secret(
            f"scram-secret-{name}",
            name=secret_name(principal),
            description=f"MSK SCRAM credentials of {principal}",
            kms_key_id=self.key.arn,
            recovery_window_in_days=7 if plan.protection.protect else 0,
            opts=kept(plan, self),
        )
        version = aws.secretsmanager.SecretVersion(
            f"scram-secret-value-{name}",
            secret_id=secret.id,
            secret_string=pulumi.Output.json_dumps({"username": principal, "password": password.result}),
            opts=child,
        )
        aws.secretsmanager.SecretPolicy(
            f"scram-secret-policy-{name}",
            secret_arn=secret.arn,
            policy=secret.arn.apply(msk_secret_policy),
            opts=child,
        )
        return ScramUser(
            secret_arn=secret.arn,
            version=version,
            credentials=ServiceCredentials(
                username=pulumi.Output.from_input(principal),
                password=pulumi.Output.secret(password.result),
                principal_id=pulumi.Output.from_input(principal),
            ),
        )

    def _admin_acls(self, plan: Plan, principal: str, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        grants = [("Cluster", "kafka-cluster", "Literal", op) for op in ADMIN_CLUSTER_OPERATIONS]
        grants += [
            ("Topic", plan.name_prefix + plan.domain + ".", "Prefixed", op) for op in ADMIN_TOPIC_OPERATIONS
        ]
        return [
            kafka.Acl(
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
            for resource_type, resource_name, pattern, operation in grants
        ]


def topic_resource(topic: PlannedTopic, opts: pulumi.ResourceOptions | None) -> kafka.Topic:
    return kafka.Topic(
        topic.name,
        name=topic.name,
        partitions=topic.partitions,
        replication_factor=topic.replication_factor,
        config=topic.config,
        opts=opts,
    )


def acl_resource(acl: AclBinding, opts: pulumi.ResourceOptions | None) -> kafka.Acl:
    return kafka.Acl(
        acl_resource_name(acl),
        acl_resource_type=ACL_RESOURCE_TYPES[acl.resource_type],
        acl_resource_name=acl.resource_name,
        resource_pattern_type_filter=acl.pattern_type.capitalize(),
        acl_operation=ACL_OPERATIONS[acl.operation],
        acl_permission_type=acl.permission.capitalize(),
        acl_principal=f"User:{acl.principal}",
        acl_host=acl.host,
        opts=opts,
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
