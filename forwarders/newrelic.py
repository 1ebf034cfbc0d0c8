"""New Relic: a change-tracking deployment (NerdGraph) or a REST v2 deployment marker.

NerdGraph reports most failures as HTTP 200 with an `errors` array, so the body
is inspected even on success statuses.
"""

from __future__ import annotations

import builtins
import re
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal, Self

import structlog
from pydantic import Field, SecretStr, model_validator

from forwarders.answers import answer_reason, shorten
from forwarders.base import (
    SERVER_ERRORS,
    Delivered,
    Event,
    ForwarderConfig,
    HttpRequest,
    HttpResponse,
    Outcome,
    PermanentFailure,
    RetryLater,
    SendContext,
    Skipped,
    check_response,
    send_raw,
)
from forwarders.common import ConfiguredForwarder, mask, summary, url_secrets
from relay.timeutil import format_wire, to_utc

log = structlog.get_logger("relay.forwarders.newrelic")

MAX_CONCURRENCY = 25  # requests in flight per API key
REGION_URLS = {"us": "https://api.newrelic.com", "eu": "https://api.eu.newrelic.com"}
DEPLOYMENT_TYPES = frozenset({"BASIC", "BLUE_GREEN", "CANARY", "ROLLING", "SHADOW", "OTHER"})
# NerdGraph refuses timestamps more than 24 h away from its clock; keep a margin for
# the time the request takes and for clock skew, so a borderline event is not refused.
TIMESTAMP_WINDOW = timedelta(hours=24) - timedelta(minutes=10)
MAX_REVISION = 127
MAX_REST_USER = 31
# The REST API stores changelog and description in 64 KiB text columns.
MAX_REST_TEXT = 65_535
# The REST API refuses 4-byte UTF-8 characters (emoji and other characters outside the
# Basic Multilingual Plane) in any field.
_BEYOND_BMP = re.compile("[\U00010000-\U0010ffff]")
# errorClass values newrelic-client-go retries: a NerdGraph rate limit (TOO_MANY_REQUESTS)
# arrives as HTTP 200 with this class, like the server-side failures.
RETRYABLE_ERROR_CLASSES = frozenset(
    {"TIMEOUT", "INTERNAL_SERVER_ERROR", "SERVER_ERROR", "TOO_MANY_REQUESTS"}
)
REST_RETRY_STATUSES = frozenset({429, 500}) | frozenset(range(502, 600))
NERDGRAPH_RETRY_STATUSES = frozenset({429}) | SERVER_ERRORS

MUTATION = (
    "mutation RelayDeployment($deployment: ChangeTrackingDeploymentInput!) "
    "{ changeTrackingCreateDeployment(deployment: $deployment) { deploymentId entityGuid } }"
)


class NewRelicConfig(ForwarderConfig):
    """Keys of a `type = "newrelic"` forwarder."""

    api: Literal["nerdgraph", "rest"] = "nerdgraph"
    region: Literal["us", "eu"] = "us"
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    api_key: SecretStr
    entity_guid: str | None = Field(default=None, min_length=1)
    app_id: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _within_the_key_limit(self) -> Self:
        if self.concurrency > MAX_CONCURRENCY:
            raise ValueError(
                f"concurrency may not exceed {MAX_CONCURRENCY}: New Relic answers 429 beyond "
                f"{MAX_CONCURRENCY} concurrent requests per API key"
            )
        return self

    @model_validator(mode="after")
    def _api_needs_its_target(self) -> Self:
        if self.api == "nerdgraph" and not self.entity_guid:
            raise ValueError('entity_guid is required when api = "nerdgraph"')
        if self.api == "rest" and self.app_id is None:
            raise ValueError('app_id is required when api = "rest"')
        return self

    @property
    def base_url(self) -> str:
        """The API host: the `url` override, else the region's."""
        return (self.url or REGION_URLS[self.region]).rstrip("/")

    def secrets(self) -> list[str]:
        """The API key, for log redaction."""
        return [self.api_key.get_secret_value(), *url_secrets(self.url or "")]


def applies(event: Event) -> Skipped | None:
    """Why New Relic is not told about `event`, or None when it is."""
    if event.type not in ("deployment.created", "deployment.completed"):
        return Skipped(f"New Relic only records finished deployments, not {event.type}")
    status = event.data.get("status")
    if status != "success":
        return Skipped(f"deployment status is {status!r}: New Relic records successful ones")
    return None


def deployed_at(event: Event) -> datetime:
    """When the deployment finished (else started, else when the event happened)."""
    for field in ("finished_at", "started_at"):
        value = event.data.get(field)
        if value:
            try:
                return to_utc(datetime.fromisoformat(str(value)))
            except ValueError:
                continue
    return to_utc(event.created_at)


def _meta_str(data: dict[str, Any], *keys: str) -> str | None:
    meta = data.get("meta_data") or {}
    for key in keys:
        value = meta.get(key) if isinstance(meta, dict) else None
        if isinstance(value, str | int | float) and str(value):
            return str(value)
    return None


def deployment_type(data: dict[str, Any]) -> str:
    """meta_data.deployment_type when it is one of NerdGraph's values, else BASIC."""
    value = (_meta_str(data, "deployment_type") or "").upper().replace("-", "_")
    return value if value in DEPLOYMENT_TYPES else "BASIC"


def build_nerdgraph_request(
    config: NewRelicConfig, event: Event, now: datetime, delivery_id: str
) -> HttpRequest:
    """The `changeTrackingCreateDeployment` mutation for `event`."""
    data = event.data
    when = deployed_at(event)
    description = summary(event)
    deployment: dict[str, Any] = {
        "entityGuid": config.entity_guid,
        "version": str(data.get("version")),
        "deploymentType": deployment_type(data),
    }
    if abs(now - when) <= TIMESTAMP_WINDOW:
        deployment["timestamp"] = int(when.timestamp() * 1000)
    else:
        # NerdGraph would refuse the timestamp (replays): keep the time in words instead.
        description += f"; deployed at {format_wire(when)}"
    deployment["description"] = description
    optional = {
        "commit": data.get("commit_sha"),
        "user": _meta_str(data, "user_id"),
        "changelog": _meta_str(data, "changelog"),
        "deepLink": _meta_str(data, "deep_link", "deepLink", "url"),
    }
    deployment.update({k: str(v) for k, v in optional.items() if v})
    headers = {"API-Key": config.api_key.get_secret_value(), "Idempotency-Key": delivery_id}
    payload = {"query": MUTATION, "variables": {"deployment": deployment}}
    return HttpRequest.json_request("POST", f"{config.base_url}/graphql", payload, headers)


def rest_text(value: str, limit_bytes: int | None = None) -> str:
    """`value` without characters beyond the BMP, cut to `limit_bytes` of UTF-8 if given."""
    text = _BEYOND_BMP.sub("", value)
    if limit_bytes is not None and len(text.encode()) > limit_bytes:
        text = text.encode()[:limit_bytes].decode("utf-8", errors="ignore")
    return text


def build_rest_request(
    config: NewRelicConfig,
    event: Event,
    now: datetime,
    delivery_id: str,
    *,
    timestamp: bool = True,
) -> HttpRequest:
    """The REST v2 deployment marker for `event` (timestamp clamped to `now`).

    Without `timestamp` the marker is recorded at New Relic's current time and the
    deployment's own time goes into the description instead.
    """
    data = event.data
    version = rest_text(str(data.get("version")))
    when = min(deployed_at(event), to_utc(now))
    description = summary(event)
    deployment: dict[str, Any] = {
        # The full version stays in the description when the revision is cut.
        "revision": version[:MAX_REVISION],
    }
    if timestamp:
        deployment["timestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        description += f"; deployed at {format_wire(when)}"
    deployment["description"] = rest_text(description, MAX_REST_TEXT)
    user = _meta_str(data, "user_id")
    if user:
        deployment["user"] = rest_text(user)[:MAX_REST_USER]
    changelog = _meta_str(data, "changelog")
    if changelog:
        deployment["changelog"] = rest_text(changelog, MAX_REST_TEXT)
    url = f"{config.base_url}/v2/applications/{config.app_id}/deployments.json"
    # X-Api-Key takes a user key or a REST API key; Api-Key only a user key.
    headers = {"X-Api-Key": config.api_key.get_secret_value(), "Idempotency-Key": delivery_id}
    return HttpRequest.json_request("POST", url, {"deployment": deployment}, headers)


def check_nerdgraph_answer(response: HttpResponse, now: datetime) -> str:
    """The created deployment id; raises for HTTP errors and for GraphQL `errors`."""
    check_response(
        response, now, retry_statuses=NERDGRAPH_RETRY_STATUSES, what="New Relic NerdGraph"
    )
    body = response.json()
    if not isinstance(body, dict):
        raise RetryLater(
            "New Relic NerdGraph answered something that is not JSON",
            status_code=response.status,
            excerpt=response.text(),
        )
    errors = body.get("errors") or []
    if errors:
        messages = shorten("; ".join(_error_text(e) for e in errors))
        kind = RetryLater if any(_retryable(e) for e in errors) else PermanentFailure
        raise kind(
            f"New Relic NerdGraph error: {messages}",
            status_code=response.status,
            excerpt=response.text(),
        )
    created = (body.get("data") or {}).get("changeTrackingCreateDeployment") or {}
    deployment_id = created.get("deploymentId") if isinstance(created, dict) else None
    if not deployment_id:
        raise PermanentFailure(
            "New Relic NerdGraph answered without a deployment id",
            status_code=response.status,
            excerpt=response.text(),
        )
    return str(deployment_id)


def _error_text(error: Any) -> str:
    return str(error.get("message", error)) if isinstance(error, dict) else str(error)


def _retryable(error: Any) -> bool:
    extensions = error.get("extensions") if isinstance(error, dict) else None
    error_class = extensions.get("errorClass") if isinstance(extensions, dict) else None
    return error_class in RETRYABLE_ERROR_CLASSES


def check_rest_answer(response: HttpResponse, now: datetime) -> None:
    """Raise per the REST API's rules: retry 429, 500, >=502; other non-2xx permanent."""
    check_response(response, now, retry_statuses=REST_RETRY_STATUSES, what="New Relic REST")


def refused_timestamp(response: HttpResponse) -> bool:
    """True when the REST API refused the marker for its timestamp (e.g. older than the
    application's latest marker)."""
    return response.status in (400, 422) and "timestamp" in answer_reason(response).lower()


class NewRelicForwarder(ConfiguredForwarder[NewRelicConfig]):
    """Records successful deployments in New Relic, via NerdGraph or the REST API."""

    type: ClassVar[str] = "newrelic"
    Config: ClassVar[builtins.type[ForwarderConfig]] = NewRelicConfig

    async def send(self, event: Event, context: SendContext) -> Outcome:
        """Create one deployment in New Relic for a successful deployment event."""
        skipped = applies(event)
        if skipped:
            return skipped
        if self.config.api == "rest":
            return await self._send_marker(event, context)
        request = build_nerdgraph_request(self.config, event, context.now, context.delivery_id)
        response = await send_raw(request, context, what="New Relic NerdGraph")
        deployment_id = check_nerdgraph_answer(response, context.now)
        return Delivered(status_code=response.status, excerpt=f"deploymentId {deployment_id}")

    async def _send_marker(self, event: Event, context: SendContext) -> Outcome:
        request = build_rest_request(self.config, event, context.now, context.delivery_id)
        response = await send_raw(request, context, what="New Relic REST")
        if refused_timestamp(response):
            # New Relic keeps an application's markers in order and refuses one older than
            # its latest: record this one now, its own time in the description.
            log.info(
                "newrelic_marker_time_refused",
                forwarder=self.config.name,
                delivery_id=context.delivery_id,
                reason=mask(answer_reason(response), self.config.secrets()),
            )
            request = build_rest_request(
                self.config, event, context.now, context.delivery_id, timestamp=False
            )
            response = await send_raw(request, context, what="New Relic REST")
        check_rest_answer(response, context.now)
        return Delivered(status_code=response.status, excerpt=response.text(200))
