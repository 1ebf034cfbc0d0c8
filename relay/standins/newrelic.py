"""A stand-in for New Relic: NerdGraph change tracking and REST v2 deployment markers.

Like the real NerdGraph, a refused mutation is answered HTTP 200 with an
`errors` array; the REST API answers 4xx with `{"error": {"title": ...}}`.
Created deployments are kept in `change_deployments` and `rest_deployments`.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from relay.standins.base import Receiver, Rejected
from relay.timeutil import format_wire, to_utc, utcnow

DEPLOYMENT_TYPES = frozenset({"BASIC", "BLUE_GREEN", "CANARY", "ROLLING", "SHADOW", "OTHER"})
INPUT_FIELDS = frozenset(
    {
        "entityGuid",
        "version",
        "changelog",
        "commit",
        "deepLink",
        "description",
        "groupId",
        "user",
        "deploymentType",
        "timestamp",
    }
)
TIMESTAMP_WINDOW = timedelta(hours=24)
MAX_REST_TEXT = 65_535
# The REST API stores text as 3-byte UTF-8: a character beyond the BMP is refused.
_BEYOND_BMP = re.compile("[\U00010000-\U0010ffff]")
USER_KEY_PREFIX = "NRAK-"
_MUTATION_CHECKS = (
    (re.compile(r"^\s*mutation\b"), "the operation is not a mutation"),
    (
        re.compile(r"\$deployment\s*:\s*ChangeTrackingDeploymentInput\s*!"),
        "variable $deployment of type ChangeTrackingDeploymentInput! is not declared",
    ),
    (
        re.compile(r"changeTrackingCreateDeployment\s*\(\s*deployment\s*:\s*\$deployment\s*\)"),
        "field 'changeTrackingCreateDeployment(deployment: $deployment)' is missing",
    ),
)


def graphql_error(message: str, error_class: str | None = None) -> dict[str, Any]:
    """One entry of a GraphQL `errors` array."""
    error: dict[str, Any] = {"message": message}
    if error_class:
        error["extensions"] = {"errorClass": error_class}
    return error


def _refuse(message: str, error_class: str | None = None) -> Rejected:
    # NerdGraph reports refused operations with HTTP 200 and no data.
    return Rejected(200, {"errors": [graphql_error(message, error_class)]})


def _rest_error(status: int, title: str) -> Rejected:
    return Rejected(status, {"error": {"title": title}})


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


class NewRelicReceiver(Receiver):
    """NerdGraph `POST /graphql` and REST `POST /v2/applications/{id}/deployments.json`."""

    name = "newrelic"

    def __init__(
        self,
        api_key: str = "NRAK-TESTKEY",
        entity_guids: Iterable[str] = ("MTIzNDU2fEFQTXxBUFBMSUNBVElPTnwx",),
        app_ids: Iterable[int] = (1234,),
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.entity_guids = set(entity_guids)
        self.app_ids = set(app_ids)
        self.now = now
        self.change_deployments: list[dict[str, Any]] = []
        self.rest_deployments: list[dict[str, Any]] = []
        # The time of each application's latest marker: an older one is refused.
        self.latest_marker: dict[int, datetime] = {}
        self._ids = itertools.count(1)
        self._rate_limited = 0

    def limit_rate(self, times: int = 1) -> None:
        """Answer the next `times` NerdGraph requests as New Relic does past its rate
        limit: HTTP 200, no data, an error of class TOO_MANY_REQUESTS."""
        self._rate_limited += times

    def routes(self) -> list[web.RouteDef]:
        """Both APIs on one app."""
        return [
            web.post("/graphql", self.wrap(self._graphql)),
            web.post("/v2/applications/{app_id}/deployments.json", self.wrap(self._rest)),
        ]

    async def _graphql(self, request: web.Request, body: bytes) -> tuple[int, Any]:
        if request.headers.get("API-Key") != self.api_key:
            raise Rejected(401, {"errors": [graphql_error("Invalid API key", "UNAUTHORIZED")]})
        if self._rate_limited:
            self._rate_limited -= 1
            limited = graphql_error("Too many requests, try again later", "TOO_MANY_REQUESTS")
            return 200, {"data": None, "errors": [limited]}
        payload = _json(body)
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            raise Rejected(400, {"errors": [graphql_error("Request body must have a query")]})
        for pattern, problem in _MUTATION_CHECKS:
            if not pattern.search(payload["query"]):
                raise _refuse(f"Validation error: {problem}")
        variables = payload.get("variables")
        deployment = variables.get("deployment") if isinstance(variables, dict) else None
        if not isinstance(deployment, dict):
            raise _refuse("Variable 'deployment' has an invalid value: null")
        self._check_input(deployment)
        guid = deployment["entityGuid"]
        if guid not in self.entity_guids:
            return 200, {
                "data": {"changeTrackingCreateDeployment": None},
                "errors": [graphql_error(f"Entity {guid} not found", "NOT_FOUND")],
            }
        created = {"deploymentId": str(uuid.uuid4()), "entityGuid": guid}
        self.change_deployments.append({**deployment, **created})
        return 200, {"data": {"changeTrackingCreateDeployment": created}}

    def _check_input(self, deployment: dict[str, Any]) -> None:
        """Reject the input the way NerdGraph's schema and change tracking would."""
        unknown = sorted(set(deployment) - INPUT_FIELDS)
        if unknown:
            raise _refuse(f"Unknown fields in ChangeTrackingDeploymentInput: {unknown}")
        for field in ("entityGuid", "version"):
            if not isinstance(deployment.get(field), str) or not deployment[field]:
                raise _refuse(f"Field '{field}' of ChangeTrackingDeploymentInput is required")
        for field in INPUT_FIELDS - {"timestamp"}:
            if deployment.get(field) is not None and not isinstance(deployment[field], str):
                raise _refuse(f"Field '{field}' must be a string")
        kind = deployment.get("deploymentType")
        if kind is not None and kind not in DEPLOYMENT_TYPES:
            raise _refuse(f"Invalid value for ChangeTrackingDeploymentType: {kind}")
        timestamp = deployment.get("timestamp")
        if timestamp is None:
            return
        if not isinstance(timestamp, int) or isinstance(timestamp, bool):
            raise _refuse("Field 'timestamp' must be epoch milliseconds")
        now_ms = self.now().timestamp() * 1000
        if abs(timestamp - now_ms) > TIMESTAMP_WINDOW.total_seconds() * 1000:
            raise _refuse("The timestamp must be within 24 hours of the current time", "BAD_INPUT")

    async def _rest(self, request: web.Request, body: bytes) -> tuple[int, Any]:
        self._check_rest_key(request)
        app_id = request.match_info["app_id"]
        if not app_id.isdigit() or int(app_id) not in self.app_ids:
            raise _rest_error(404, "Application not found")
        payload = _json(body)
        deployment = payload.get("deployment") if isinstance(payload, dict) else None
        if not isinstance(deployment, dict):
            raise _rest_error(400, "Required parameter missing: deployment")
        self._check_marker(deployment)
        when = self._marker_time(int(app_id), deployment.get("timestamp"))
        marker = {
            "id": next(self._ids),
            "revision": deployment["revision"],
            "changelog": deployment.get("changelog"),
            "description": deployment.get("description"),
            "user": deployment.get("user"),
            "timestamp": format_wire(when),
            "links": {"application": int(app_id)},
        }
        self.rest_deployments.append(marker)
        return 201, {"deployment": marker}

    def _check_rest_key(self, request: web.Request) -> None:
        """X-Api-Key takes a user key or a REST API key; Api-Key only a user key."""
        key = request.headers.get("X-Api-Key")
        if key is None and self.api_key.startswith(USER_KEY_PREFIX):
            key = request.headers.get("Api-Key")
        if key != self.api_key:
            raise _rest_error(401, "The API key provided is invalid")

    def _marker_time(self, app_id: int, timestamp: str | None) -> datetime:
        """When the marker is recorded; refused when older than the application's latest."""
        when = to_utc(datetime.fromisoformat(timestamp)) if timestamp else self.now()
        latest = self.latest_marker.get(app_id)
        if latest is not None and when < latest:
            raise _rest_error(
                422,
                "Validation failed: Timestamp must be later than the application's "
                "most recent deployment",
            )
        self.latest_marker[app_id] = when
        return when

    def _check_marker(self, deployment: dict[str, Any]) -> None:
        """Reject a marker the way the REST API validates it (422 with a title)."""
        revision = deployment.get("revision")
        if not isinstance(revision, str) or not revision.strip():
            raise _rest_error(422, "Validation failed: Revision can't be blank")
        if len(revision) > 127:
            raise _rest_error(422, "Validation failed: Revision is too long (maximum 127)")
        for field in ("changelog", "description", "user"):
            if deployment.get(field) is not None and not isinstance(deployment[field], str):
                raise _rest_error(422, f"Validation failed: {field} must be a string")
        if len(deployment.get("user") or "") > 31:
            raise _rest_error(422, "Validation failed: User is too long (maximum 31)")
        for field in ("changelog", "description"):
            if len(deployment.get(field) or "") > MAX_REST_TEXT:
                raise _rest_error(
                    422, f"Validation failed: {field.title()} is too long (maximum {MAX_REST_TEXT})"
                )
        for field in ("revision", "changelog", "description", "user"):
            if _BEYOND_BMP.search(deployment.get(field) or ""):
                raise _rest_error(
                    422, f"Validation failed: {field.title()} has characters that cannot be stored"
                )
        timestamp = deployment.get("timestamp")
        if timestamp is None:
            return
        try:
            when = datetime.fromisoformat(timestamp) if isinstance(timestamp, str) else None
        except ValueError:
            when = None
        if when is None or when.utcoffset() != timedelta(0):
            raise _rest_error(422, "Validation failed: Timestamp must be ISO-8601 in UTC")
        if to_utc(when) > self.now():
            raise _rest_error(422, "Validation failed: Timestamp cannot be in the future")
