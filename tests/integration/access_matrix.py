"""The access matrix: really try each path as each service's principal, on a real broker.

Every declared path of a service, plus the undeclared ones a mistake would open, must come out
exactly as the plan says: allowed when declared, denied otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from confluent_kafka import Producer

from infra.live.kafka_broker import Broker
from infra.plan.model import Plan, ServicePlan
from tests.integration import access_checks as check


@dataclass(frozen=True)
class Attempt:
    service: str
    path: str
    expected: bool
    run: Callable[[], bool]


def attempts_for(broker: Broker, plan: Plan, service: ServicePlan, password: str) -> list[Attempt]:
    """Every declared path of ``service`` plus the undeclared ones a mistake would open."""
    creds = (broker, service.principal, password)
    own_group = service.consumer_group or f"{plan.domain}.{service.name}"
    attempts: list[Attempt] = []

    def attempt(path: str, expected: bool, action: Callable[..., bool], *args: str) -> None:
        attempts.append(Attempt(service.name, path, expected, partial(action, *creds, *args)))

    idempotent = service.env.get("KAFKA_ENABLE_IDEMPOTENCE") == "true"
    for topic in plan.topics:
        producing = topic.name in service.produces
        attempt(f"produce {topic.name}", producing, check.can_produce, topic.name)
        if idempotent and producing:
            # No IDEMPOTENT_WRITE grant: Kafka >= 2.8 only wants WRITE on the topic (KIP-679).
            attempts.append(
                Attempt(
                    service.name,
                    f"idempotent produce {topic.name}",
                    True,
                    partial(check.can_produce, *creds, topic.name, idempotent=True),
                )
            )
        attempt(
            f"consume {topic.name} as {own_group}",
            topic.name in service.consumes,
            check.can_consume,
            topic.name,
            own_group,
        )
    foreign = next(s for s in plan.services if s.consumer_group and s.name != service.name)
    readable = service.consumes[0] if service.consumes else plan.topics[0].name
    attempt(
        f"join group {foreign.consumer_group} of {foreign.name}",
        False,
        check.can_consume,
        readable,
        str(foreign.consumer_group),
    )
    attempt("create a topic", False, check.can_create_topic, f"{plan.name_prefix}{plan.domain}.")
    target = (service.produces or service.consumes)[0]
    attempt(f"alter config of {target}", False, check.can_alter_config, target)
    # Each instance's id is the service's prefix plus its own suffix (here "matrix-0").
    prefixes = {s.transactional_id_prefix for s in plan.services if s.transactional_id_prefix}
    prefixes.add(service.transactional_id_prefix or f"{plan.name_prefix}{plan.domain}.{service.name}.")
    for prefix in sorted(prefixes):
        attempt(
            f"transactional id {prefix}matrix-0",
            prefix == service.transactional_id_prefix,
            check.can_use_transactional_id,
            f"{prefix}matrix-0",
        )
    if service.transactional_id_prefix:
        bare = service.transactional_id_prefix.rstrip(".")
        attempt(f"transactional id {bare} (outside the prefix)", False, check.can_use_transactional_id, bare)
    return attempts


def seed_every_topic(broker: Broker, plan: Plan) -> None:
    producer = Producer(broker.client_config())
    for topic in plan.topics:
        producer.produce(topic.name, key=b"seed", value=b"seed")
    assert producer.flush(30) == 0


@dataclass(frozen=True)
class MatrixResult:
    rows: list[tuple[Attempt, bool]]  # (attempt, allowed)

    @property
    def over_granted(self) -> list[Attempt]:
        return [attempt for attempt, allowed in self.rows if allowed and not attempt.expected]

    @property
    def missing(self) -> list[Attempt]:
        return [attempt for attempt, allowed in self.rows if attempt.expected and not allowed]

    def report(self, plan: Plan) -> list[str]:
        lines: list[str] = []
        for service in plan.services:
            rows = [(a, allowed) for a, allowed in self.rows if a.service == service.name]
            allowed_count = sum(allowed for _, allowed in rows)
            over = sum(a in self.over_granted for a, _ in rows)
            lacking = sum(a in self.missing for a, _ in rows)
            lines.append(
                f"{service.name:20} {allowed_count:2} allowed  {len(rows) - allowed_count:2} denied  "
                f"over-granted {over}  missing {lacking}"
            )
            for attempt, allowed in rows:
                mark = "ok " if allowed == attempt.expected else "BAD"
                lines.append(f"    {mark} {'allow' if allowed else 'deny '}  {attempt.path}")
        over, missing = len(self.over_granted), len(self.missing)
        lines.append(f"total: {len(self.rows)} paths, {over} over-granted, {missing} missing")
        return lines


def run_matrix(broker: Broker, plan: Plan, passwords: dict[str, str]) -> MatrixResult:
    """Seed every topic, then try every path of every service in parallel."""
    seed_every_topic(broker, plan)

    def run_service(service: ServicePlan) -> list[tuple[Attempt, bool]]:
        return [
            (attempt, attempt.run())
            for attempt in attempts_for(broker, plan, service, passwords[service.name])
        ]

    with ThreadPoolExecutor(max_workers=len(plan.services)) as pool:
        rows = [row for rows in pool.map(run_service, plan.services) for row in rows]
    return MatrixResult(rows)
