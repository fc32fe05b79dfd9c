"""Naming rules shared by the topology, the stack settings and the plan."""

from __future__ import annotations

import re

MAX_TOPIC_NAME_LENGTH = 249
# Confluent Cloud service-account display names are at most 64 characters.
MAX_CONFLUENT_DISPLAY_NAME = 64
PLATFORM_ADMIN = "platform-admin"
# MirrorMaker 2's principal on both clusters of a migration (settings.migration).
PLATFORM_MIRROR = "platform-mirror"
RESERVED_SERVICE_NAMES = frozenset({PLATFORM_ADMIN, PLATFORM_MIRROR})
# The longest pr-<n> stack name the stack-name rule below allows.
LONGEST_PR_STACK = "pr-999999999"

_TOPIC_CHARS = re.compile(r"^[A-Za-z0-9._-]+$")
_DNS_LABEL = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
_PR_STACK = re.compile(r"^pr-([1-9][0-9]{0,8})$")


def topic_name_problem(name: str) -> str | None:
    """Why Kafka would refuse this topic name, or None when it is legal."""
    if name in {".", ".."}:
        return f"'{name}' is not a legal topic name"
    if not _TOPIC_CHARS.match(name):
        return f"'{name}' may only contain letters, digits, '.', '_' and '-'"
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        return f"'{name[:40]}...' is {len(name)} characters; Kafka allows {MAX_TOPIC_NAME_LENGTH}"
    return None


def collision_key(topic_name: str) -> str:
    """Kafka refuses two topics whose names differ only by '.' versus '_' (metric names)."""
    return topic_name.replace(".", "_")


def dns_label_problem(name: str, max_length: int = 63) -> str | None:
    if len(name) > max_length:
        return f"'{name}' is longer than {max_length} characters"
    if not _DNS_LABEL.match(name):
        return (
            f"'{name}' must be lower-case letters, digits and '-', "
            "starting with a letter and not ending with '-'"
        )
    return None


def env_var_suffix(topic_key: str) -> str:
    """``user.events`` -> ``USER_EVENTS`` for ``KAFKA_TOPIC_USER_EVENTS``."""
    return re.sub(r"[^A-Za-z0-9]", "_", topic_key).upper()


def principal_name(domain: str, stack: str, service: str) -> str:
    """``<domain>.<stack>.<service>``: domains and service names hold no '.', so no two (domain,
    stack, service) give the same name, and every stack's identities stay distinct within a
    Confluent organization (service-account display names) or a cluster (SCRAM users)."""
    return f"{domain}.{stack}.{service}"


def generation_suffix(generation: int) -> str:
    """What a credential generation adds to names: nothing for generation 1, so a stack that
    never rotates keeps the names it had before rotation existed; ``-g<N>`` after."""
    return "" if generation == 1 else f"-g{generation}"


def generation_principal(principal: str, generation: int) -> str:
    """A SCRAM user holds one password, so a rotated credential is a second user beside the
    first: ``<principal>`` for generation 1, ``<principal>-g<N>`` later."""
    return principal + generation_suffix(generation)


def pr_number(stack: str) -> int | None:
    """The pull-request number of a ``pr-<n>`` stack, or None for other stacks."""
    match = _PR_STACK.match(stack)
    return int(match.group(1)) if match else None


def looks_like_pr_stack(stack: str) -> bool:
    return stack.startswith("pr-")
