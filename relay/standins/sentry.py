"""A stand-in for Sentry's release and deploy endpoints, as strict as the real API.

Errors have Sentry's shapes: `{"detail": ...}` for auth and lookups, DRF-style
`{"field": ["message"]}` for validation. Releases are kept by version and
deploys in a list, so tests can assert a deploy was created exactly once.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from relay.standins.base import Receiver, Rejected, parse_json
from relay.timeutil import format_wire, utcnow

_BAD_VERSION_CHARS = set("/\\\n\r\t\f")
_BAD_ENVIRONMENT_CHARS = set("/\n\r\f")
MAX_COMMIT = 64
# A host name with a top-level domain of 2 to 63 letters (inner hyphens allowed) or
# punycode, labels without edge hyphens (Django's URLValidator).
_DOMAIN = re.compile(
    r"^(?:[a-z0-9\u00a1-\uffff](?:[a-z0-9\u00a1-\uffff-]{0,61}[a-z0-9\u00a1-\uffff])?\.)+"
    r"(?:(?!-)[a-z\u00a1-\uffff-]{2,63}(?<!-)|xn--[a-z0-9]{1,59})\.?$"
)
NOT_FOUND = {"detail": "The requested resource does not exist"}


def _field_error(field: str, message: str) -> Rejected:
    return Rejected(400, {field: [message]})


def _json_object(body: bytes) -> dict[str, Any]:
    data = parse_json(body, {"detail": "JSON parse error"})
    if not isinstance(data, dict):
        raise Rejected(400, {"non_field_errors": ["Invalid data. Expected a dictionary."]})
    return data


def _check_string(data: dict[str, Any], field: str, max_length: int | None = None) -> None:
    value = data.get(field)
    if value is None:
        return
    if not isinstance(value, str):
        raise _field_error(field, "Not a valid string.")
    if max_length is not None and len(value) > max_length:
        raise _field_error(field, f"Ensure this field has no more than {max_length} characters.")


def _check_datetime(data: dict[str, Any], field: str) -> None:
    value = data.get(field)
    if value is None:
        return
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
            return
        except ValueError:
            pass
    raise _field_error(field, "Datetime has wrong format. Use one of these formats: ISO-8601.")


def _check_version(data: dict[str, Any]) -> str:
    version = data.get("version")
    if not isinstance(version, str) or not version:
        raise _field_error("version", "This field is required.")
    if len(version) > 200:
        raise _field_error("version", "Ensure this field has no more than 200 characters.")
    # Sentry checks the reserved names on the stripped version (" latest" is refused).
    stripped = version.strip()
    if (
        _BAD_VERSION_CHARS & set(version)
        or stripped in {"", ".", ".."}
        or stripped.lower() == "latest"
    ):
        raise _field_error("version", f"Release with name {version} is not allowed")
    return version


def valid_url(value: str) -> bool:
    """Whether a URL validator of Django's kind takes `value`: http(s), a host with a
    top-level domain (or localhost, or an IP address), a valid port, no white space."""
    if any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        return False
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host or not port_ok:
        return False
    if "@" in parts.netloc and not parts.username:
        return False  # Django's user:password@ part needs a user name
    if "[" in parts.netloc or host.replace(".", "").isdigit():
        try:
            ipaddress.ip_address(host)
            return True
        except ValueError:
            return False
    return host == "localhost" or bool(_DOMAIN.match(host))


def _check_url(data: dict[str, Any]) -> None:
    _check_string(data, "url")
    url = data.get("url")
    if url and not valid_url(url):
        raise _field_error("url", "Enter a valid URL.")
    # The release's url column holds 200 characters.
    _check_string(data, "url", 200)


def _check_commit(commit: str) -> None:
    # A commit may be a range `a..b`, each end at most 64 characters.
    ends = commit.split("..") if ".." in commit else [commit]
    if any(not end for end in ends):
        raise Rejected(400, {"refs": [{"commit": ["Commit cannot begin or end with .."]}]})
    if any(len(end) > MAX_COMMIT for end in ends):
        problem = f"Commit too long - max is {MAX_COMMIT} chars"
        raise Rejected(400, {"refs": [{"commit": [problem]}]})


def _check_refs(refs: Any) -> None:
    if refs is None:
        return
    if not isinstance(refs, list):
        raise _field_error("refs", "Expected a list of items.")
    for ref in refs:
        if not isinstance(ref, dict):
            raise _field_error("refs", "Expected a dictionary of items.")
        for key in ("repository", "commit"):
            if not isinstance(ref.get(key), str) or not ref[key]:
                raise Rejected(400, {"refs": [{key: ["This field is required."]}]})
        if ref.get("previousCommit") is not None and not isinstance(ref["previousCommit"], str):
            raise Rejected(400, {"refs": [{"previousCommit": ["Not a valid string."]}]})
        _check_commit(ref["commit"])


class SentryReceiver(Receiver):
    """Sentry's `releases/` and `releases/{version}/deploys/` for one org and its projects."""

    name = "sentry"

    def __init__(
        self,
        token: str = "sentry-token",
        org: str = "acme",
        projects: Iterable[str] = ("web",),
        repositories: Iterable[str] = ("acme/web",),
    ) -> None:
        super().__init__()
        self.token = token
        self.org = org
        self.projects = set(projects)
        # The repositories set up in the organisation: refs may only name these.
        self.repositories = set(repositories)
        self.releases: dict[str, dict[str, Any]] = {}
        self.deploys: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def routes(self) -> list[web.RouteDef]:
        """The two endpoints relay uses."""
        base = "/api/0/organizations/{org}/releases/"
        return [
            web.post(base, self.wrap(self._create_release)),
            web.post(base + "{version}/deploys/", self.wrap(self._create_deploy)),
        ]

    def _authorize(self, request: web.Request) -> None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            raise Rejected(401, {"detail": "Authentication credentials were not provided."})
        if auth[7:] != self.token:
            raise Rejected(401, {"detail": "Invalid token"})
        if request.match_info["org"] != self.org:
            raise Rejected(404, NOT_FOUND)

    async def _create_release(self, request: web.Request, body: bytes) -> tuple[int, Any]:
        self._authorize(request)
        data = _json_object(body)
        version = _check_version(data)
        projects = data.get("projects")
        if not isinstance(projects, list) or not projects:
            raise _field_error("projects", "This field is required.")
        unknown = [p for p in projects if not isinstance(p, str) or p not in self.projects]
        if unknown:
            raise _field_error("projects", f"Invalid project ids or slugs: {unknown}")
        _check_refs(data.get("refs"))
        _check_string(data, "ref", 200)
        _check_url(data)
        _check_datetime(data, "dateReleased")
        if data.get("commits") is not None and not isinstance(data["commits"], list):
            raise _field_error("commits", "Expected a list of items.")
        existing = self.releases.get(version)
        if existing is None:
            status = 201
            existing = self.releases[version] = {
                "version": version,
                "projects": sorted(set(projects)),
                "refs": [],
                "url": data.get("url"),
                "dateReleased": data.get("dateReleased"),
                "dateCreated": format_wire(utcnow()),
            }
        else:
            # Like Sentry: 201 when the existing release gains projects, 208 when nothing
            # was added.
            added = set(projects) - set(existing["projects"])
            existing["projects"] = sorted(set(existing["projects"]) | added)
            status = 201 if added else 208
        self._set_refs(existing, data.get("refs") or [])
        return status, existing

    def _set_refs(self, release: dict[str, Any], refs: list[dict[str, Any]]) -> None:
        """Link the commits; like Sentry, only after the release row exists, so a
        repository that is not set up refuses the request but leaves the release."""
        unknown = sorted({r["repository"] for r in refs} - self.repositories)
        if unknown:
            raise Rejected(400, {"refs": [f"Invalid repository names: {','.join(unknown)}"]})
        if refs:
            release["refs"] = refs

    async def _create_deploy(self, request: web.Request, body: bytes) -> tuple[int, Any]:
        self._authorize(request)
        release = self.releases.get(request.match_info["version"])
        if release is None:
            raise Rejected(404, NOT_FOUND)
        data = _json_object(body)
        environment = data.get("environment")
        if not isinstance(environment, str) or not environment:
            raise _field_error("environment", "This field is required.")
        _check_string(data, "environment", 64)
        if _BAD_ENVIRONMENT_CHARS & set(environment):
            raise _field_error("environment", "Invalid environment name.")
        _check_string(data, "name", 64)
        _check_string(data, "url", 200)
        _check_datetime(data, "dateStarted")
        _check_datetime(data, "dateFinished")
        projects = data.get("projects")
        if projects is not None and (
            not isinstance(projects, list) or not set(projects) <= set(release["projects"])
        ):
            raise _field_error("projects", "Invalid projects: not all belong to the release.")
        deploy = {
            "id": str(next(self._ids)),
            "version": release["version"],
            "environment": environment,
            "name": data.get("name"),
            "url": data.get("url"),
            "projects": projects,
            "dateStarted": data.get("dateStarted"),
            "dateFinished": data.get("dateFinished") or format_wire(utcnow()),
        }
        self.deploys.append(deploy)
        return 201, deploy
