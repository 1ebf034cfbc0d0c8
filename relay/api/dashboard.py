"""Read endpoints the dashboard needs beyond the rest of the API."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from relay.api.keys import DELIVERIES, RECORDS, STORE
from relay.api.records import json_answer, principal_of
from relay.api.routes import Route
from relay.errors import ValidationFailed
from relay.models import DeliverySummary, UtcDatetime
from relay.store.dashboard_base import MAX_SUMMARY_IDS


class SummaryQuery(BaseModel):
    """Query parameters of the delivery summaries."""

    deployment: str = Field(
        description=f"Deployment ids, comma-separated or repeated (at most {MAX_SUMMARY_IDS})."
    )


class DeploymentDeliveriesOut(BaseModel):
    """The per-forwarder delivery state of one deployment (one row per event)."""

    deployment_id: str
    component: str
    deliveries: list[DeliverySummary]


class StatusChange(BaseModel):
    """One recorded event of a deployment: what happened and the status it left."""

    event_type: str
    status: str | None
    at: UtcDatetime


async def status_history(request: web.Request) -> web.Response:
    """A deployment's status history: each recorded event, oldest first."""
    record = await request.app[RECORDS].get(
        "deployment", request.match_info["slug"], request.match_info["id"], principal_of(request)
    )
    events = await request.app[STORE].deployment_events(record.id)
    body = [
        StatusChange(event_type=e.type, status=e.payload.get("status"), at=e.created_at).model_dump(
            mode="json"
        )
        for e in events
    ]
    return json_answer(body)


async def delivery_summaries(request: web.Request) -> web.Response:
    """Delivery summaries of many deployments at once (unknown ids and components the
    token may not see are left out)."""
    ids = [
        v.strip()
        for raw in request.query.getall("deployment", [])
        for v in raw.split(",")
        if v.strip()
    ]
    if not ids or len(ids) > MAX_SUMMARY_IDS:
        raise ValidationFailed(
            "invalid query parameters",
            details=[{"field": "deployment", "message": f"give 1-{MAX_SUMMARY_IDS} ids"}],
        )
    found = await request.app[DELIVERIES].summaries(ids, principal_of(request))
    body = [
        DeploymentDeliveriesOut(
            deployment_id=f.deployment_id, component=f.component, deliveries=f.deliveries
        ).model_dump(mode="json")
        for f in found
    ]
    return json_answer(body)


def routes() -> list[Route]:
    """Routes of this module."""
    return [
        Route(
            "GET",
            "/deliveries/summary",
            delivery_summaries,
            "Delivery summaries of many deployments",
            "deliveries",
            query=SummaryQuery,
            response=DeploymentDeliveriesOut,
            response_is_list=True,
        ),
        Route(
            "GET",
            "/components/{slug}/deployments/{id}/history",
            status_history,
            "A deployment's status history",
            "deployments",
            response=StatusChange,
            response_is_list=True,
        ),
    ]
