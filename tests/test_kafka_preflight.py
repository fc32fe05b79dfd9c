"""The existing-cluster preflight's answers that need no broker: a cluster that does not answer is
one error within seconds, naming the address and the admin; a cluster without the Admin API's
SCRAM calls (Redpanda 25.1 and older answer UNSUPPORTED_VERSION, which no broker here can) is
refused with what to do instead."""

from __future__ import annotations

import socket
import time

import pytest
from confluent_kafka import KafkaError, KafkaException

from infra.live.cluster_admin import CONNECT_WITHIN_S, AdminLogin, Unsupported, read_scram_users
from infra.program.kafka_preflight import existing_cluster_problems
from infra.program.previous_deployment import PreviousDeployment
from tests.project_files import Project


def test_a_cluster_that_does_not_answer_is_one_error_within_seconds(project: Project) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    login = AdminLogin(
        (closed,), "SASL_PLAINTEXT", "SCRAM-SHA-512", "platform-admin", "pw"
    )  # pragma: allowlist secret
    started = time.monotonic()
    problems, cluster_id = existing_cluster_problems(login, project.plan("local"), PreviousDeployment())
    assert cluster_id is None
    assert time.monotonic() - started < CONNECT_WITHIN_S + 5
    assert len(problems) == 1
    assert problems[0].startswith(
        f"the Kafka cluster at {closed} as 'platform-admin' (SCRAM-SHA-512) did not answer"
    )


class _NoScramCalls:
    """What librdkafka gives for a broker without DescribeUserScramCredentials (KIP-554)."""

    def describe_user_scram_credentials(self, request_timeout: float) -> object:
        raise KafkaException(KafkaError(KafkaError.UNSUPPORTED_VERSION, "Unsupported API"))


def test_a_cluster_without_the_scram_admin_calls_is_refused_naming_redpanda() -> None:
    with pytest.raises(Unsupported, match=r"Redpanda 25\.1 and older do not"):
        read_scram_users(_NoScramCalls())
