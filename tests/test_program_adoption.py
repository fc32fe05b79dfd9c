"""Adopting what already exists, under mocks: on Confluent every topic and ACL settings.adopt
lists is registered with Pulumi's `import` option and the provider's own id format, nothing else
is; on existing clusters the adopt list tells each family of topics which existing topics it may
converge to the plan (no import: its create takes them over); and what adoption cannot do is
refused before anything is registered."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.model.errors import ConfigError
from infra.plan.resolve import load_plan
from tests.project_files import ENCRYPTED, REPO, Project
from tests.pulumi_harness import Run, run_program, stack_settings

CC = "confluentcloud:index/"
EXISTING = {"environment_id": "env-abc123", "cluster_id": "lkc-abc123"}
ACCOUNTS = {"api": "sa-api01", "guardian": "sa-guard1"}


def existing_cluster_settings() -> dict[str, Any]:
    document = yaml.safe_load((REPO / "examples" / "Pulumi.existing-cluster.yaml").read_text())
    settings: dict[str, Any] = document["config"]["kafka-platform:settings"]
    return settings


def every_planned(project: Project, stack: str, settings: dict[str, Any]) -> dict[str, Any]:
    """settings with adopt listing every topic and every ACL of the stack's plan."""
    project.write(
        f"Pulumi.{stack}.yaml",
        yaml.safe_dump(
            {
                "config": {
                    "kafka-platform:settings": settings,
                    "kafka-platform:kafkaAdminPassword": {"secure": ENCRYPTED},
                }
            }
        ),
    )
    plan = load_plan(project.root, stack)
    adopted = copy.deepcopy(settings)
    adopted["adopt"] = {
        "topics": [topic.name for topic in plan.topics],
        "acls": [acl.adoption_id for acl in plan.acls],
    }
    return adopted


@pytest.fixture(scope="module")
def kafka_adopting(tmp_path_factory: pytest.TempPathFactory) -> Run:
    project = Project(tmp_path_factory.mktemp("adopt"))
    settings = every_planned(project, "staging", existing_cluster_settings())
    return run_program(project.root, "staging", settings=settings)


def test_every_adopted_topic_is_handed_to_its_family(kafka_adopting: Run) -> None:
    families = kafka_adopting.of_type("pulumi-python:dynamic/kafka:Topics")
    assert families
    for family in families:
        assert family.inputs["adopt"] == sorted(family.inputs["topics"])
        assert not family.import_id, "taken over by the create, not imported"
    adopted = sorted(name for family in families for name in family.inputs["adopt"])
    assert adopted == sorted(topic.name for topic in kafka_adopting.plan.topics)


def test_only_what_adopt_lists_is_adopted(tmp_path: Path) -> None:
    project = Project(tmp_path)
    settings = every_planned(project, "staging", existing_cluster_settings())
    settings["adopt"] = {"topics": ["aura360.user.events"], "acls": []}
    run = run_program(project.root, "staging", settings=settings)
    adopted = {
        family.name: family.inputs["adopt"] for family in run.of_type("pulumi-python:dynamic/kafka:Topics")
    }
    assert {name: topics for name, topics in adopted.items() if topics} == {
        "topics-user": ["aura360.user.events"]
    }
    assert not [r.name for r in run.registrations if r.import_id]


def confluent_adopting_settings(example_dir: Path) -> dict[str, Any]:
    settings = copy.deepcopy(stack_settings(example_dir, "prod"))
    settings["kafka"]["confluent"]["existing_cluster"] = EXISTING
    return settings


@pytest.fixture(scope="module")
def confluent_adopting(example_dir: Path) -> Run:
    settings = confluent_adopting_settings(example_dir)
    plan = run_program(example_dir, "prod", settings=settings).plan
    settings["adopt"] = {
        "topics": [topic.name for topic in plan.topics],
        "acls": [acl.adoption_id for acl in plan.acls if acl.service in ACCOUNTS],
        "service_accounts": ACCOUNTS,
    }
    return run_program(example_dir, "prod", settings=settings)


def test_confluent_uses_the_existing_cluster_and_creates_none(confluent_adopting: Run) -> None:
    counts = confluent_adopting.counts()
    assert counts[f"{CC}kafkaCluster:KafkaCluster"] == counts[f"{CC}environment:Environment"] == 0
    provider = confluent_adopting.one("pulumi:providers:confluentcloud", "kafka-admin").inputs
    assert provider["kafkaId"] == "lkc-abc123"
    assert provider["kafkaRestEndpoint"] == "https://lkc-abc123.example:443"


def test_confluent_topics_are_imported_by_cluster_and_name_and_stay_protected(
    confluent_adopting: Run,
) -> None:
    topics = confluent_adopting.of_type(f"{CC}kafkaTopic:KafkaTopic")
    assert topics and all(t.import_id == f"lkc-abc123/{t.inputs['topicName']}" for t in topics)
    assert all(t.protect and t.retain_on_delete for t in topics)


def test_confluent_acls_are_imported_with_the_adopted_service_accounts(confluent_adopting: Run) -> None:
    acls = confluent_adopting.of_type(f"{CC}kafkaAcl:KafkaAcl")
    adopted = [a for a in acls if a.import_id]
    planned = [a for a in confluent_adopting.plan.acls if a.service in ACCOUNTS]
    assert len(adopted) == len(planned) > 0
    write = next(a for a in acls if a.name == "acl-api-topic-aura360.user.events-write")
    assert write.import_id == "lkc-abc123/TOPIC#aura360.user.events#LITERAL#User:sa-api01#*#WRITE#ALLOW"
    assert write.inputs["principal"] == "User:sa-api01"
    others = [a for a in acls if not a.import_id]
    assert others and all(not a.inputs["principal"].endswith(("sa-api01", "sa-guard1")) for a in others)


def test_adopted_service_accounts_keep_their_names(confluent_adopting: Run) -> None:
    account = confluent_adopting.one(f"{CC}serviceAccount:ServiceAccount", "sa-api")
    assert account.import_id == "sa-api01"
    assert set(account.ignore_changes) == {"displayName", "description"}
    new = confluent_adopting.one(f"{CC}serviceAccount:ServiceAccount", "sa-context-aggregator")
    assert new.import_id == "" and new.ignore_changes == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda s: s["adopt"].update(topics=["aura360.hand-made"]),
            "Pulumi.prod.yaml: settings.adopt.topics[0]: 'aura360.hand-made' is not a topic of this "
            "stack's plan",
        ),
        (
            lambda s: s["adopt"].update(acls=["api READ TOPIC aura360.user.events"]),
            "Pulumi.prod.yaml: settings.adopt.acls[0]: 'api READ TOPIC aura360.user.events' is not an ACL of "
            "this stack's plan",
        ),
        (
            lambda s: s["adopt"].update(service_accounts={}),
            "Pulumi.prod.yaml: settings.adopt.acls[0]: a Confluent ACL names its service account: set "
            "adopt.service_accounts.api",
        ),
        (
            lambda s: s["kafka"]["confluent"].pop("existing_cluster"),
            "Pulumi.prod.yaml: settings.adopt: adopting on Confluent Cloud needs "
            "kafka.confluent.existing_cluster",
        ),
    ],
)
def test_what_cannot_be_adopted_is_refused_with_its_key_path(
    project: Project, edit: Any, message: str
) -> None:
    def adopting(settings: dict[str, Any]) -> None:
        settings["kafka"]["confluent"]["existing_cluster"] = EXISTING
        settings["adopt"] = {
            "topics": ["aura360.user.events"],
            "acls": ["api WRITE TOPIC aura360.user.events"],
            "service_accounts": {"api": "sa-api01"},
        }
        edit(settings)

    with pytest.raises(ConfigError) as error:
        project.edit_settings("prod", adopting).plan("prod")
    assert any(str(problem).startswith(message) for problem in error.value.problems), error.value.problems


def test_an_msk_stack_cannot_adopt(project: Project) -> None:
    project.write("Pulumi.prod-msk.yaml", (REPO / "examples" / "Pulumi.prod-msk.yaml").read_text())
    project.edit_settings("prod-msk", lambda s: s.update(adopt={"topics": ["aura360.user.events"]}))
    with pytest.raises(
        ConfigError, match=r"settings\.adopt: nothing to adopt: this stack creates its MSK cluster"
    ):
        project.plan("prod-msk")


def test_a_preview_adopts_nothing_its_base_stack_lists(project: Project) -> None:
    project.edit_settings(
        "dev",
        lambda s: (
            s["kafka"]["confluent"].update(existing_cluster=EXISTING)
            or s.update(adopt={"topics": ["aura360.user.events"]})
        ),
    )
    assert load_plan(project.root, "dev").adoption.topics == ["aura360.user.events"]
    assert load_plan(project.root, "pr-3").adoption.topics == []
