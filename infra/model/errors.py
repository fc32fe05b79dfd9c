"""Configuration problems: each names its file and key path, and all are reported together."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

KeyPath = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_:-]+$")


def format_key_path(path: KeyPath) -> str:
    """Render a key path the way a user finds it in the YAML file.

    Keys that contain dots (topic names such as ``user.events``) are quoted so the path
    stays unambiguous: ``topics."user.events".partitions``.
    """
    rendered = ""
    for part in path:
        if isinstance(part, int):
            rendered += f"[{part}]"
            continue
        # JSON quoting also escapes control characters, so one problem stays one line.
        text = part if _PLAIN_KEY.match(part) else json.dumps(part, ensure_ascii=False)
        rendered += f".{text}" if rendered else text
    return rendered or "(top level)"


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    path: KeyPath
    message: str
    # Other keys of the same file the check read besides its own path (e.g. another topic a
    # name collides with): a problem there may make this one a mere consequence.
    reads: tuple[KeyPath, ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        return f"{self.file}: {format_key_path(self.path)}: {self.message}"


class ConfigError(Exception):
    """One or more problems in the user's configuration files (CLI exit code 2)."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


class ProblemCollector:
    """Collects problems for one file under a common key-path prefix."""

    def __init__(self, file: str, prefix: KeyPath = ()) -> None:
        self.file = file
        self.prefix = prefix
        self.problems: list[Problem] = []

    def add(self, path: Sequence[str | int], message: str, reads: Iterable[KeyPath] = ()) -> None:
        self.problems.append(
            Problem(
                self.file,
                (*self.prefix, *path),
                message,
                reads=tuple((*self.prefix, *other) for other in reads),
            )
        )

    def extend(self, problems: Iterable[Problem]) -> None:
        self.problems.extend(problems)

    def raise_if_any(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


def _overlaps(one: KeyPath, other: KeyPath) -> bool:
    shorter = min(len(one), len(other))
    return one[:shorter] == other[:shorter]


def without_follow_ons(problems: Iterable[Problem], set_aside: Iterable[Problem]) -> list[Problem]:
    """The problems that cannot be consequences of keys set aside (``set_aside``: the unknown
    keys left out so the rest could be checked). A key set aside may have been meant as any
    field of the mapping it is in, so a problem in that mapping, or one that read it, is held
    back until the key is fixed."""
    incomplete = [(aside.file, aside.path[:-1]) for aside in set_aside]
    return [
        problem
        for problem in problems
        if not any(
            file == problem.file and any(_overlaps(scope, path) for path in (problem.path, *problem.reads))
            for file, scope in incomplete
        )
    ]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when one of ``choices`` is close to ``word``, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
