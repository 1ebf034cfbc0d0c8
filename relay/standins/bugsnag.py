"""A strict stand-in for Bugsnag's Build API (`POST /` on build.bugsnag.com).

Checks every field TARGETS.md "Bugsnag — Build API" lists, collects all the
problems into one `400 {"errors": [...]}` like the real service, and keeps the
accepted builds in `builds`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from relay.standins.base import Receiver, Rejected, parse_json

PROVIDERS = frozenset(
    {"github", "github-enterprise", "bitbucket", "bitbucket-server", "gitlab", "gitlab-onpremise"}
)
_API_KEY = re.compile(r"^[0-9a-fA-F]{32}$")
_STRING_FIELDS = ("releaseStage", "builderName", "appVersionCode", "appBundleVersion", "buildTool")


def _source_control_errors(value: Any) -> list[str]:
    if not isinstance(value, dict):
        return ["sourceControl must be an object"]
    errors = [
        f"sourceControl.{key} is required"
        for key in ("provider", "repository", "revision")
        if not isinstance(value.get(key), str) or not value[key]
    ]
    provider = value.get("provider")
    if isinstance(provider, str) and provider and provider not in PROVIDERS:
        errors.append(f"sourceControl.provider must be one of {', '.join(sorted(PROVIDERS))}")
    return errors


def _metadata_errors(value: Any) -> list[str]:
    if not isinstance(value, dict):
        return ["metadata must be an object"]
    return [f"metadata.{k} must be a string" for k, v in value.items() if not isinstance(v, str)]


def build_errors(body: Any) -> list[str]:
    """Every reason the Build API would refuse `body` (empty when it is valid)."""
    if not isinstance(body, dict):
        return ["payload must be a JSON object"]
    errors: list[str] = []
    key = body.get("apiKey")
    if not isinstance(key, str) or not key:
        errors.append("apiKey is required")
    elif not _API_KEY.match(key):
        errors.append("apiKey must be 32 hexadecimal characters")
    version = body.get("appVersion")
    if not isinstance(version, str) or not version.strip():
        errors.append("appVersion is required")
    errors += [
        f"{name} must be a string"
        for name in _STRING_FIELDS
        if name in body and not isinstance(body[name], str)
    ]
    if "autoAssignRelease" in body and not isinstance(body["autoAssignRelease"], bool):
        errors.append("autoAssignRelease must be a boolean")
    if "sourceControl" in body:
        errors += _source_control_errors(body["sourceControl"])
    if "metadata" in body:
        errors += _metadata_errors(body["metadata"])
    return errors


class BugsnagReceiver(Receiver):
    """`POST /`: the Build API, authenticated by the body's `apiKey` only."""

    name = "bugsnag"

    def __init__(
        self, warnings: list[str] | None = None, api_keys: Iterable[str] | None = None
    ) -> None:
        super().__init__()
        self.builds: list[dict[str, Any]] = []
        # The API keys of the projects on this instance (None: any well-formed key); a
        # key of another instance (InsightHub's begin 00000) is unknown here.
        self.api_keys = None if api_keys is None else set(api_keys)
        # Canned warnings put in every 200 answer (the real service adds some).
        self.warnings = warnings or []

    def routes(self) -> list[web.RouteDef]:
        """The single Build API endpoint."""
        return [web.post("/", self.wrap(self.create))]

    async def create(self, request: web.Request, raw: bytes) -> tuple[int, Any]:
        """Validate and record one build."""
        invalid = {"errors": ["payload is not valid JSON"]}
        body: Any = parse_json(raw, invalid) if raw else None
        errors = build_errors(body)
        key = body.get("apiKey") if isinstance(body, dict) else None
        if not errors and self.api_keys is not None and key not in self.api_keys:
            errors = ["apiKey invalid"]
        if errors:
            raise Rejected(400, {"errors": errors})
        self.builds.append(body)
        answer: dict[str, Any] = {"status": "ok"}
        if self.warnings:
            answer["warnings"] = list(self.warnings)
        return 200, answer
