"""Handlers of the Cloud66 v3 dialect: `/api/3/stacks/{stack_id}/deployments…`.

Answers carry Cloud66's `{"response": …}` envelope; the mapping is in
relay/records/cloud66.py."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from relay.api.keys import CLOUD66
from relay.api.parsing import nest_pairs
from relay.api.records import deployment_location, json_answer, principal_of
from relay.api.routes import Route
from relay.records.cloud66 import DeployParams, PageParams, number_of, pagination
from relay.records.service import parse_query

BASE = "/api/3/stacks/{stack_id}/deployments"


class Coded(BaseModel):
    """A Cloud66 code with its meaning (see the README's tables)."""

    code: int
    meaning: str


class Cloud66Deployment(BaseModel):
    """A deployment as Cloud66 shows it."""

    id: int = Field(description="relay's `number` of the deployment.")
    triggered_by: str | None
    triggered_via: Coded
    started_at: str | None
    finished_at: str | None
    outcome: Coded
    git_hash: str | None
    deploy_session: str = Field(description="relay's id of the deployment.")
    deploy_type: Coded
    is_head: bool
    is_live: bool
    reverted: bool | None
    reverted_by: str | None
    reverted_at: str | None
    is_deploying: bool
    commit_url: str | None


class Cloud66One(BaseModel):
    """`{"response": deployment}`."""

    response: Cloud66Deployment


class Cloud66Pagination(BaseModel):
    """Cloud66's pagination block."""

    previous: int | None
    next: int | None
    current: int
    per_page: int
    count: int
    pages: int


class Cloud66List(BaseModel):
    """A page of deployments, newest first."""

    response: list[Cloud66Deployment]
    count: int = Field(description="Deployments of the stack in all.")
    pagination: Cloud66Pagination


class Scheduled(BaseModel):
    """What a POST answers."""

    id: int
    message: str = "Deployment scheduled"
    queued: bool = True


class Cloud66Scheduled(BaseModel):
    """`{"response": {"id", "message", "queued"}}`."""

    response: Scheduled


class Cancelled(BaseModel):
    """What a DELETE answers."""

    ok: bool = True
    message: str = "Deployment cancelled"


class Cloud66Cancelled(BaseModel):
    """`{"response": {"ok", "message"}}`."""

    response: Cancelled


def _page_params(request: web.Request) -> PageParams:
    return parse_query(PageParams, request.query)


async def get_deployment(request: web.Request) -> web.Response:
    """One deployment by its integer id (relay's `number`)."""
    number = number_of(request.match_info["deployment_id"])
    view = await request.app[CLOUD66].get(
        request.match_info["stack_id"], number, principal_of(request)
    )
    return json_answer({"response": view})


async def list_deployments(request: web.Request) -> web.Response:
    """The stack's deployments, newest first, `page` by `page` (`per_page`, 30 by default)."""
    params = _page_params(request)
    items, total = await request.app[CLOUD66].page(
        request.match_info["stack_id"], params, principal_of(request)
    )
    body: dict[str, Any] = {
        "response": items,
        "count": total,
        "pagination": pagination(params.page, params.per_page, total),
    }
    return json_answer(body)


async def deploy(request: web.Request) -> web.Response:
    """Record a `queued` deployment from the query parameters (a body, such as Cloud66's
    `{"stack_id": …}`, is not needed and is ignored)."""
    # nest_pairs refuses a NUL character, as relay refuses it in any field it takes.
    fields = nest_pairs(request.query.items())
    record = await request.app[CLOUD66].deploy(
        request.match_info["stack_id"], fields, principal_of(request)
    )
    answer = Cloud66Scheduled(response=Scheduled(id=record.number or 0))
    return json_answer(answer.model_dump(), headers=deployment_location(record))


async def cancel(request: web.Request) -> web.Response:
    """Cancel a deployment in progress (status `aborted`); 409 when it already ended."""
    number = number_of(request.match_info["deployment_id"])
    await request.app[CLOUD66].cancel(request.match_info["stack_id"], number, principal_of(request))
    return json_answer(Cloud66Cancelled(response=Cancelled()).model_dump())


def routes() -> list[Route]:
    """Routes of this module."""
    tag = "cloud66"
    one = BASE + "/{deployment_id}"
    return [
        Route(
            "GET",
            BASE,
            list_deployments,
            "Cloud66: list a stack's deployments",
            tag,
            query=PageParams,
            response=Cloud66List,
        ),
        Route(
            "POST",
            BASE,
            deploy,
            "Cloud66: record a queued deployment",
            tag,
            query=DeployParams,
            response=Cloud66Scheduled,
        ),
        Route("GET", one, get_deployment, "Cloud66: get a deployment", tag, response=Cloud66One),
        Route(
            "DELETE", one, cancel, "Cloud66: cancel a deployment", tag, response=Cloud66Cancelled
        ),
    ]
