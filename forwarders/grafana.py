"""Grafana: one annotation per deployment, a region from start to finish.

`deployment.started` creates the annotation and keeps its id in the shared
per-deployment state; `deployment.completed`/`cancelled` then PATCH that same
annotation's end, tags and text instead of adding a second one. Events recorded
in one call (`deployment.created`, `build.created`) create a finished region.
"""

from __future__ import annotations

import builtins
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import Field, SecretStr, model_validator

from forwarders.base import (
    Delivered,
    Event,
    ForwarderConfig,
    HttpRequest,
    HttpResponse,
    Outcome,
    PermanentFailure,
    SendContext,
    Skipped,
    send_raw,
)
from forwarders.base import check_response as _check
from forwarders.common import BaseUrl, ConfiguredForwarder, link, summary, url_secrets
from relay.models import TERMINAL_STATUSES

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CREATE_EVENTS = frozenset({"deployment.created", "deployment.started", "build.created"})
FINISH_EVENTS = frozenset({"deployment.completed", "deployment.cancelled"})
DEFAULT_TAGS_LENGTH = 500
# Room for the component tag of the longest slug (100 characters), whatever else is cut.
MIN_TAGS_LENGTH = 128
# A cut tag keeps at least this many bytes (its key and the start of its value).
MIN_CUT_TAG = 16
ELLIPSIS = "…"
# Grafana's `tag` table holds a tag's key and value in VARCHAR(100) columns (value widened
# to 512 only in recent versions): on PostgreSQL or MySQL a longer one fails the insert,
# and Grafana answers 500 "Failed to save annotation" to every retry.
MAX_TAG_PART = 100


class GrafanaConfig(ForwarderConfig):
    """Keys of a `type = "grafana"` forwarder (DESIGN §8)."""

    url: BaseUrl
    token: SecretStr
    dashboard_uid: str | None = None
    panel_id: int | None = None
    tags: list[str] = Field(default_factory=list)
    org_id: int | None = Field(default=None, ge=1)
    # Grafana's `[annotations] tags_length`: raise it here when your Grafana allows more.
    tags_length: int = Field(default=DEFAULT_TAGS_LENGTH, ge=MIN_TAGS_LENGTH)

    @model_validator(mode="after")
    def _panel_needs_dashboard(self) -> GrafanaConfig:
        # A panel id alone points nowhere: Grafana resolves it inside a dashboard.
        if self.panel_id is not None and self.dashboard_uid is None:
            raise ValueError("panel_id needs dashboard_uid")
        return self

    def secrets(self) -> list[str]:
        """The service-account token."""
        return [self.token.get_secret_value(), *url_secrets(self.url or "")]


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of a datetime (naive ones are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Integer arithmetic: float timestamps can be off by one millisecond.
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def epoch_ms(value: Any) -> int | None:
    """Epoch milliseconds of an ISO-8601 string; None when absent."""
    if value is None or value == "":
        return None
    return to_ms(datetime.fromisoformat(str(value)))


def outcome(event: Event) -> str | None:
    """The deployment's result, or its terminal status when it ended without one."""
    result = event.data.get("result")
    if result:
        return str(result)
    status = event.data.get("status")
    # A terminal status stands in for a missing result when a deployment ends.
    if event.type in FINISH_EVENTS and status in TERMINAL_STATUSES:
        return str(status)
    return None


def annotation_tags(config: GrafanaConfig, event: Event) -> list[str]:
    """Configured tags, then `component:`, `stage:`, `version:`, `result:` (absent ones
    skipped), fitted within the configured `tags_length`."""
    data = event.data
    tags = list(config.tags)
    if event.type == "build.created":
        tags.append("build")
    pairs = (
        ("component", data.get("component")),
        ("stage", data.get("stage")),
        ("version", data.get("version")),
        ("result", outcome(event)),
    )
    tags.extend(f"{key}:{value}" for key, value in pairs if value)
    component = f"component:{data['component']}" if data.get("component") else None
    # Grafana stores tags as a set: no duplicates.
    fitted = dict.fromkeys(within_columns(t) for t in tags)
    return fit_tags(list(fitted), config.tags_length, keep=component)


def within_columns(tag: str) -> str:
    """`tag` with its key and value, as Grafana splits them (at the first colon; the value
    ends at a second one), each cut to MAX_TAG_PART characters, ending in an ellipsis."""
    key, colon, rest = tag.partition(":")
    value, second, tail = rest.partition(":")
    if len(key) <= MAX_TAG_PART and len(value) <= MAX_TAG_PART:
        return tag
    key, value = _cut_chars(key, MAX_TAG_PART), _cut_chars(value, MAX_TAG_PART)
    return f"{key}{colon}{value}{second}{tail}"


def _cut_chars(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS


def tags_length(tags: list[str]) -> int:
    """The length Grafana's annotation store checks: the tags as a JSON list of quoted
    strings, in UTF-8 bytes (`["a","b"]` is 9), escapes not counted."""
    return 2 + sum(len(t.encode()) + 2 for t in tags) + max(len(tags) - 1, 0)


def fit_tags(tags: list[str], limit: int, keep: str | None = None) -> list[str]:
    """`tags` within `limit` (see tags_length): the longest tags are cut first, each to no
    less than MIN_CUT_TAG bytes; only when that is not enough are tags dropped, last
    first, and never `keep`."""
    if tags_length(tags) <= limit:
        return tags
    cuttable = [i for i, t in enumerate(tags) if t != keep]
    cap = _widest_cap(tags, cuttable, limit)
    fitted = [cut_tag(t, cap) if i in cuttable else t for i, t in enumerate(tags)]
    while tags_length(fitted) > limit and any(t != keep for t in fitted):
        last = max(i for i, t in enumerate(fitted) if t != keep)
        del fitted[last]
    return fitted


def _widest_cap(tags: list[str], cuttable: list[int], limit: int) -> int:
    """The largest byte cap for the cuttable tags that brings the total within `limit`
    (MIN_CUT_TAG when even that is not enough)."""
    low, high = MIN_CUT_TAG, max(len(tags[i].encode()) for i in cuttable) if cuttable else 0
    best = MIN_CUT_TAG
    while low <= high:
        middle = (low + high) // 2
        trial = [cut_tag(t, middle) if i in cuttable else t for i, t in enumerate(tags)]
        if tags_length(trial) <= limit:
            best, low = middle, middle + 1
        else:
            high = middle - 1
    return best


def cut_tag(tag: str, max_bytes: int) -> str:
    """`tag` cut to at most `max_bytes` of UTF-8, ending in an ellipsis when cut."""
    if len(tag.encode()) <= max_bytes:
        return tag
    room = max_bytes - len(ELLIPSIS.encode())
    return tag.encode()[:room].decode("utf-8", errors="ignore").rstrip() + ELLIPSIS


def annotation_text(event: Event) -> str:
    """The summary of the deployment, then its link when it has one."""
    url = link(event.data)
    return f"{summary(event)} {url}" if url else summary(event)


def _headers(config: GrafanaConfig, delivery_id: str) -> dict[str, str]:
    headers = {
        "Authorization": f"Bearer {config.token.get_secret_value()}",
        "Idempotency-Key": delivery_id,
    }
    if config.org_id is not None:
        headers["X-Grafana-Org-Id"] = str(config.org_id)
    return headers


def region(event: Event) -> tuple[int, int | None]:
    """(time, timeEnd) in ms: start (or finish, or the event time) and a differing finish."""
    started = epoch_ms(event.data.get("started_at"))
    finished = epoch_ms(event.data.get("finished_at"))
    start = started if started is not None else finished
    if start is None:
        start = to_ms(event.created_at)
    end = finished if finished is not None and finished != start else None
    return start, end


def build_create(config: GrafanaConfig, event: Event, delivery_id: str) -> HttpRequest:
    """`POST {url}/api/annotations` for `event` (a point, or a region when it has ended)."""
    start, end = region(event)
    body: dict[str, Any] = {
        "text": annotation_text(event),
        "time": start,
        "tags": annotation_tags(config, event),
        "data": {"deployment_id": event.data.get("id"), "event": event.type},
    }
    if end is not None:
        body["timeEnd"] = end
    if config.dashboard_uid is not None:
        body["dashboardUID"] = config.dashboard_uid
    if config.panel_id is not None:
        body["panelId"] = config.panel_id
    return HttpRequest.json_request(
        "POST", f"{config.url}/api/annotations", body, _headers(config, delivery_id)
    )


def build_patch(
    config: GrafanaConfig, event: Event, annotation_id: int, delivery_id: str
) -> HttpRequest:
    """`PATCH {url}/api/annotations/{id}` closing the region with the end, tags and text."""
    end = epoch_ms(event.data.get("finished_at"))
    if end is None:
        end = to_ms(event.created_at)
    body = {"timeEnd": end, "tags": annotation_tags(config, event), "text": annotation_text(event)}
    return HttpRequest.json_request(
        "PATCH",
        f"{config.url}/api/annotations/{annotation_id}",
        body,
        _headers(config, delivery_id),
    )


def check_response(response: HttpResponse, now: datetime) -> None:
    """Retry 408/429/5xx; 400/401/403/404 and other 4xx are permanent."""
    _check(response, now, what="Grafana")


def created_id(response: HttpResponse) -> int:
    """The annotation id of a 200 answer to a create; PermanentFailure when it has none."""
    payload = response.json()
    value = payload.get("id") if isinstance(payload, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        # e.g. an auth proxy's HTML login page answered 200: nothing was created.
        raise PermanentFailure(
            "Grafana answered 200 without an annotation id",
            status_code=response.status,
            excerpt=response.text(),
        )
    return value


class GrafanaForwarder(ConfiguredForwarder[GrafanaConfig]):
    """Annotates Grafana dashboards with deployments and builds."""

    type: ClassVar[str] = "grafana"
    Config: ClassVar[builtins.type[ForwarderConfig]] = GrafanaConfig

    async def send(self, event: Event, context: SendContext) -> Outcome:
        """Create or finish the deployment's annotation."""
        known = context.shared.get("annotation_id")
        if event.type in FINISH_EVENTS and isinstance(known, int):
            return await self._patch(event, context, known)
        if event.type in CREATE_EVENTS or event.type in FINISH_EVENTS:
            return await self._create(event, context)
        return Skipped(f"Grafana annotations do not track {event.type}")

    async def _create(self, event: Event, context: SendContext) -> Outcome:
        done = context.state.get("annotation_id")
        if isinstance(done, int):
            # This delivery already created it (e.g. re-run after a crash): never add twice.
            return Delivered(None, f"annotation {done} already added")
        request = build_create(self.config, event, context.delivery_id)
        response = await send_raw(request, context, what="Grafana")
        check_response(response, context.now)
        annotation_id = created_id(response)
        context.state["annotation_id"] = annotation_id
        context.shared["annotation_id"] = annotation_id
        return Delivered(response.status, f"annotation {annotation_id} added")

    async def _patch(self, event: Event, context: SendContext, annotation_id: int) -> Outcome:
        request = build_patch(self.config, event, annotation_id, context.delivery_id)
        response = await send_raw(request, context, what="Grafana")
        if response.status == 404:
            raise PermanentFailure(
                f"Grafana annotation {annotation_id} no longer exists",
                status_code=404,
                excerpt=response.text(),
            )
        check_response(response, context.now)
        return Delivered(response.status, f"annotation {annotation_id} patched")
