"""How the platform reaches a Kafka cluster that runs elsewhere through the Admin API: an
existing-cluster stack's `kafka.cluster`, and a migration's source (`migration.source`)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal, Protocol

from pydantic import Field, field_validator

from infra.model.errors import KeyPath
from infra.model.topology import StrictModel

ScramMechanism = Literal["SCRAM-SHA-256", "SCRAM-SHA-512"]

_BROKER_VERSION = re.compile(r"^(\d+)\.(\d+)(\.\d+)?$")
_HOST_PORT = re.compile(r"^[A-Za-z0-9.-]+:\d{1,5}$")
# KIP-679: from Apache Kafka 2.8 an idempotent producer needs only WRITE on a topic; older
# brokers also want IDEMPOTENT_WRITE on the cluster.
IDEMPOTENT_WRITE_IMPLIED_FROM = (2, 8)


class AddProblem(Protocol):
    """`ProblemCollector.add`: a problem at a key path, and the other keys its check read."""

    def __call__(self, path: KeyPath, message: str, reads: Iterable[KeyPath] = ()) -> None: ...


class ClusterTls(StrictModel):
    ca_cert_file: str | None = None  # PEM, relative to the project directory; default: system CAs
    skip_verify: bool = False


class ClusterAdmin(StrictModel):
    """The identity Pulumi manages topics, users and ACLs with. Its password is secret config:
    `pulumi config set --secret kafka-platform:kafkaAdminPassword ...`."""

    username: str = Field(min_length=1)
    sasl_mechanism: ScramMechanism | Literal["PLAIN"] | None = None  # default: the services' mechanism


class ExistingClusterSettings(StrictModel):
    """A Kafka cluster run elsewhere (Apache Kafka, Strimzi, Redpanda, an MSK cluster created
    outside this project), managed through the Kafka Admin API."""

    bootstrap_servers: list[str] = Field(min_length=1)
    security_protocol: Literal["SASL_SSL", "SASL_PLAINTEXT"] = "SASL_SSL"
    # Services get SCRAM users, the only credentials the Kafka Admin API can create.
    sasl_mechanism: ScramMechanism = "SCRAM-SHA-512"
    admin: ClusterAdmin
    tls: ClusterTls = Field(default_factory=ClusterTls)
    broker_version: str | None = None  # oldest broker's Apache Kafka version; default: >= 2.8

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_ports(cls, value: list[str]) -> list[str]:
        for server in value:
            if not _HOST_PORT.match(server):
                raise ValueError(f"'{server}' is not a host:port address")
        return value

    @field_validator("broker_version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is not None and not _BROKER_VERSION.match(value):
            raise ValueError(f"'{value}' is not a Kafka version such as 3.7 or 2.6.2")
        return value

    @property
    def admin_mechanism(self) -> str:
        return self.admin.sasl_mechanism or self.sasl_mechanism

    @property
    def needs_idempotent_write_acl(self) -> bool:
        if self.broker_version is None:
            return False
        major, minor = (int(part) for part in self.broker_version.split(".")[:2])
        return (major, minor) < IDEMPOTENT_WRITE_IMPLIED_FROM
