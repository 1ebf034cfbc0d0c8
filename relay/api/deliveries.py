"""Handlers of deliveries, forwarders and metrics."""

from __future__ import annotations

import time
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from relay.api.keys import DELIVERIES, DEPLOYMENT_METRICS, METRICS, RECORDS, STORE_OPENED
from relay.api.middleware import public
from relay.api.parsing import decode_json_object, read_body
from relay.api.records import json_answer, principal_of
from relay.api.routes import Route
from relay.errors import ValidationFailed
from relay.metrics import CONTENT_TYPE
from relay.models import Delivery, DeliveryStatus, ForwarderInfo, UtcDatetime
from relay.records.service import validation_details
from relay.store.base import DeliveryQuery

T = TypeVar("T", bound=BaseModel)


class DeliveryParams(BaseModel):
    """Query parameters of a deliveries search."""

    status: DeliveryStatus | None = None
    forwarder: str | None = None
    since: UtcDatetime | None = Field(default=None, description="Created at or after.")
    until: UtcDatetime | None = Field(default=None, description="Created before.")
    limit: int = Field(default=100, ge=1, le=1000)


class ReplayIn(BaseModel):
    """Body of a replay: the time window of the events to deliver again."""

    since: UtcDatetime
    until: UtcDatetime


class ReplayAnswer(BaseModel):
    """How many deliveries a replay queued."""

    forwarder: str
    queued: int


def _validated(model: type[T], data: object, what: str) -> T:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(f"invalid {what}", details=validation_details(exc)) from None


async def deployment_deliveries(request: web.Request) -> web.Response:
    """Per forwarder: status and every attempt (time, duration, status code, error)."""
    record = await request.app[RECORDS].get(
        "deployment", request.match_info["slug"], request.match_info["id"], principal_of(request)
    )
    found = await request.app[DELIVERIES].of_deployment(record.id)
    return json_answer([d.model_dump(mode="json") for d in found])


async def search_deliveries(request: web.Request) -> web.Response:
    """Search deliveries by status, forwarder and creation time, newest first."""
    params = _validated(DeliveryParams, dict(request.query), "query parameters")
    query = DeliveryQuery(
        status=params.status,
        forwarder=params.forwarder,
        since=params.since,
        until=params.until,
        limit=params.limit,
    )
    found = await request.app[DELIVERIES].search(query, principal_of(request))
    return json_answer([d.model_dump(mode="json", exclude={"attempt_log"}) for d in found])


async def retry_delivery(request: web.Request) -> web.Response:
    """Send a delivery again now, dead ones included (admin)."""
    found = await request.app[DELIVERIES].retry(request.match_info["id"], principal_of(request))
    return json_answer(found.model_dump(mode="json"), status=202)


async def replay(request: web.Request) -> web.Response:
    """Deliver again to this forwarder every matching event recorded in [since, until)."""
    body = decode_json_object(await read_body(request))
    window = _validated(ReplayIn, body, "body")
    name = request.match_info["name"]
    count = await request.app[DELIVERIES].replay(
        name, window.since, window.until, principal_of(request)
    )
    return json_answer({"forwarder": name, "queued": count}, status=202)


async def enable_forwarder(request: web.Request) -> web.Response:
    """Re-enable a forwarder that its target disabled (HTTP 410) (admin)."""
    name = request.match_info["name"]
    await request.app[DELIVERIES].enable(name, principal_of(request))
    return json_answer({"forwarder": name, "state": "active"})


class ResumeAnswer(BaseModel):
    """What a resume did: the circuit is closed, `due_now` deliveries brought forward."""

    forwarder: str
    circuit: str = "closed"
    due_now: int


async def resume_forwarder(request: web.Request) -> web.Response:
    """The target is back: close the circuit, make pending deliveries due now (admin)."""
    name = request.match_info["name"]
    moved = await request.app[DELIVERIES].resume(name, principal_of(request))
    return json_answer(ResumeAnswer(forwarder=name, due_now=moved).model_dump(mode="json"))


async def list_forwarders(request: web.Request) -> web.Response:
    """Each forwarder: state (active, circuit-open, disabled), success rate, last error."""
    principal = principal_of(request)
    principal.require("events:read")
    infos = await request.app[DELIVERIES].forwarders()
    if "*" not in principal.components:
        # The last error quotes a delivery of any component, maybe one this token may not
        # see (a target's answer naming another team's release): only the counts then.
        for info in infos:
            info.counts.last_error = info.counts.last_error_at = None
    return json_answer([i.model_dump(mode="json") for i in infos])


@public
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format."""
    app_metrics = request.app[METRICS]
    app_metrics.refresh(await request.app[DELIVERIES].forwarders(), time.time())
    if request.app[STORE_OPENED].is_set():
        await request.app[DEPLOYMENT_METRICS].refresh()  # the store's deployment series
    return web.Response(body=app_metrics.render(), headers={"Content-Type": CONTENT_TYPE})


def routes() -> list[Route]:
    """Routes of this module."""
    d = "deliveries"
    return [
        Route(
            "GET",
            "/components/{slug}/deployments/{id}/deliveries",
            deployment_deliveries,
            "Deliveries of a deployment",
            d,
            response=Delivery,
            response_is_list=True,
        ),
        Route(
            "GET",
            "/deliveries",
            search_deliveries,
            "Search deliveries",
            d,
            query=DeliveryParams,
            response=Delivery,
            response_is_list=True,
        ),
        Route(
            "POST",
            "/deliveries/{id}/retry",
            retry_delivery,
            "Retry a delivery now",
            d,
            response=Delivery,
            status=202,
        ),
        Route(
            "GET",
            "/forwarders",
            list_forwarders,
            "Forwarders and their health",
            "forwarders",
            response=ForwarderInfo,
            response_is_list=True,
        ),
        Route(
            "POST",
            "/forwarders/{name}/replay",
            replay,
            "Replay a time window",
            "forwarders",
            body=ReplayIn,
            response=ReplayAnswer,
            status=202,
            conflicts=True,
        ),
        Route(
            "POST",
            "/forwarders/{name}/enable",
            enable_forwarder,
            "Re-enable a forwarder",
            "forwarders",
        ),
        Route(
            "POST",
            "/forwarders/{name}/resume",
            resume_forwarder,
            "Resume a forwarder whose target is back",
            "forwarders",
            response=ResumeAnswer,
        ),
        Route(
            "GET",
            "/metrics",
            metrics,
            "Prometheus metrics",
            "operations",
            public=True,
            content_type="text/plain",
        ),
    ]
