"""The one Schema Registry core: every path that reads or changes a Confluent-compatible
registry (Confluent Platform, Redpanda's, Apicurio's ccompat API, Karapace) goes through here.
One REST client (urllib), one request timeout, basic auth, the registry's own media type.

Like `cluster_admin`, it stays free of pydantic and the plan's models: the dynamic providers'
plugin imports it on every preview (tests/test_layers.py).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

# Every request waits at most this long for its answer.
REQUEST_TIMEOUT_S = 30
MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
# Confluent's error codes (the `error_code` of a refusal's body).
SUBJECT_NOT_FOUND = 40401
SUBJECT_SOFT_DELETED = 40404
INCOMPATIBLE = 409


class RegistryUnreachable(Exception):
    """The registry did not answer, or refused the login (HTTP 401); nothing was changed."""


class RegistryError(Exception):
    """The registry refused a request: its HTTP status, Confluent error code and message."""

    def __init__(self, message: str, status: int, code: int | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class RegistryForbidden(RegistryError):
    """The registry took the login but does not allow this request (HTTP 403)."""


class IncompatibleSchema(RegistryError):
    """A new version the subject's compatibility level does not allow."""


@dataclass(frozen=True)
class RegistryLogin:
    """How to reach the registry. The password never reaches a message."""

    url: str  # the API's base, e.g. https://registry.internal or .../apis/ccompat/v7
    username: str = ""
    password: str = field(default="", repr=False)


@dataclass(frozen=True)
class RegisteredVersion:
    subject: str
    version: int
    schema_id: int
    schema: str  # the schema text as the registry holds it
    schema_type: str  # AVRO unless the registry says otherwise


@dataclass(frozen=True)
class LiveSubject:
    """What the registry holds of one subject."""

    schema: str | None  # its latest version; None: not registered (or soft-deleted)
    compatibility: str | None  # its own level; None: none set, the registry's default applies


class SchemaRegistry:
    """The REST calls this project makes, each one request with one timeout."""

    def __init__(self, login: RegistryLogin) -> None:
        self.login = login

    def subjects(self, *, deleted: bool = False) -> list[str]:
        """The registry's subjects (with `deleted`, the soft-deleted ones too)."""
        found = self._request("GET", "/subjects", query={"deleted": "true"} if deleted else None)
        return sorted(str(name) for name in found)

    def latest(self, subject: str) -> RegisteredVersion | None:
        """The subject's latest version; None when the subject does not exist (or is deleted)."""
        body = self._found(f"/subjects/{_quote(subject)}/versions/latest")
        if body is None:
            return None
        return RegisteredVersion(
            subject=str(body["subject"]),
            version=int(body["version"]),
            schema_id=int(body["id"]),
            schema=str(body["schema"]),
            schema_type=str(body.get("schemaType", "AVRO")),
        )

    def compatibility(self, subject: str) -> str | None:
        """The subject's own compatibility level; None where it has none set."""
        body = self._found(f"/config/{_quote(subject)}")
        if body is None:
            return None
        level = body.get("compatibilityLevel") or body.get("compatibility")
        return str(level) if level else None

    def set_compatibility(self, subject: str, level: str) -> None:
        self._request("PUT", f"/config/{_quote(subject)}", {"compatibility": level})

    def clear_compatibility(self, subject: str) -> None:
        """Remove the subject's own level: the registry's default applies to it again (nothing
        to do where it has none)."""
        try:
            self._request("DELETE", f"/config/{_quote(subject)}")
        except RegistryError as exc:
            if exc.status != 404:
                raise

    def register(self, subject: str, schema: str, *, level: str = "") -> int:
        """Register ``schema`` as the subject's next version (the registry answers with the
        existing id when it is already a version); returns its id. A version the subject's
        level refuses is an `IncompatibleSchema` naming the subject and the level."""
        try:
            body = self._request(
                "POST", f"/subjects/{_quote(subject)}/versions", {"schema": schema, "schemaType": "AVRO"}
            )
        except RegistryError as exc:
            if exc.status == 409:
                at = f" under its compatibility level {level}" if level else ""
                raise IncompatibleSchema(
                    f"schema registry {self.login.url} refused the new version of subject '{subject}'{at}: "
                    f"{exc}",
                    exc.status,
                    exc.code,
                ) from None
            raise
        return int(body["id"])

    def delete_subject(self, subject: str) -> list[int]:
        """Soft-delete the subject (its versions stay readable by id and can be restored);
        returns the versions deleted, none where the subject was not there."""
        try:
            versions = self._request("DELETE", f"/subjects/{_quote(subject)}")
        except RegistryError as exc:
            if exc.status == 404 or exc.code in (SUBJECT_NOT_FOUND, SUBJECT_SOFT_DELETED):
                return []
            raise
        return [int(version) for version in versions]

    def _found(self, path: str) -> Any:
        """GET ``path``; None where the registry answers 404 (no such subject or setting)."""
        try:
            return self._request("GET", path)
        except RegistryError as exc:
            if exc.status == 404:
                return None
            raise

    def _request(
        self, method: str, path: str, body: Any = None, *, query: dict[str, str] | None = None
    ) -> Any:
        url = f"{self.login.url.rstrip('/')}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"Accept": MEDIA_TYPE}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = MEDIA_TYPE
        if self.login.username:
            token = base64.b64encode(f"{self.login.username}:{self.login.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            who = f" as '{self.login.username}'" if self.login.username else ""
            if exc.code == 401:
                raise RegistryUnreachable(
                    f"schema registry {self.login.url} refused the login{who} (HTTP 401)"
                ) from None
            message, code = _refusal(exc)
            if exc.code == 403:
                # Logged in (or let in anonymously) but not allowed: a missing grant, not a bad login.
                raise RegistryForbidden(
                    f"schema registry {self.login.url} does not allow {method} {urllib.parse.unquote(path)}"
                    f"{who or ' without a login'} (HTTP 403): {message}",
                    exc.code,
                    code,
                ) from None
            raise RegistryError(f"{method} {path}: HTTP {exc.code}: {message}", exc.code, code) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RegistryUnreachable(
                f"schema registry {self.login.url} did not answer within {REQUEST_TIMEOUT_S} s: {reason}"
            ) from None


def _quote(subject: str) -> str:
    return urllib.parse.quote(subject, safe="")


def _refusal(error: urllib.error.HTTPError) -> tuple[str, int | None]:
    text = error.read().decode(errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:300] or str(error.reason), None
    if not isinstance(body, dict):
        return text.strip()[:300], None
    code = body.get("error_code")
    return str(body.get("message") or text), int(code) if isinstance(code, int) else None


def read_subjects(registry: SchemaRegistry, names: list[str]) -> dict[str, LiveSubject]:
    """Each named subject's latest schema and own level."""
    found = {}
    for name in names:
        latest = registry.latest(name)
        found[name] = LiveSubject(
            schema=latest.schema if latest is not None else None,
            compatibility=registry.compatibility(name) if latest is not None else None,
        )
    return found
