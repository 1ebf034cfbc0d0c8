"""Handlers of the Scalingo v1 dialect: `/v1/apps/{app}…` (the live stream is in
scalingo_stream.py). The mapping is in relay/records/scalingo.py."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from relay.api.forwarded import base_url as forwarded_base_url
from relay.api.keys import SCALINGO, SETTINGS
from relay.api.parsing import request_fields
from relay.api.records import deployment_location, json_answer, principal_of
from relay.api.routes import Route
from relay.records.scalingo import (
    ScalingoPageParams,
    ScalingoTriggerIn,
    deployment_view,
    pagination,
)
from relay.records.service import check_slug, parse_query

BASE = "/v1/apps/{app}"
STREAM = BASE + "/deployments_stream"


def base_url(request: web.Request) -> str:
    """relay's own URL as the client reaches it: `server.public_url`, else the scheme and
    host the client used (forwarded ones believed only from `server.trusted_proxies`)."""
    return forwarded_base_url(request, request.app[SETTINGS].server)


def stream_url(request: web.Request, app: str) -> str:
    """The ws:// or wss:// URL of an app's deployments stream."""
    http = base_url(request)
    scheme = "wss" if http.startswith("https:") else "ws"
    return f"{scheme}:{http.split(':', 1)[1]}{STREAM.format(app=app)}"


class Pusher(BaseModel):
    """Who pushed (see the README's mapping)."""

    email: str | None
    id: str | None
    username: str | None


class Links(BaseModel):
    """Hypermedia links of a deployment."""

    output: str


class ScalingoDeployment(BaseModel):
    """A deployment as Scalingo shows it."""

    id: str
    app_id: str
    created_at: str
    finished_at: str | None
    status: str
    git_ref: str
    previous_git_ref: str | None
    duration: int = Field(description="Seconds from start to finish; 0 while running.")
    image_size: int | None
    stack_base_image: str | None
    pusher: Pusher
    links: Links
    type: str | None = Field(default=None, description="`archive` when a source_url was sent.")


class ScalingoOne(BaseModel):
    """`{"deployment": …}`."""

    deployment: ScalingoDeployment


class ScalingoPagination(BaseModel):
    """Scalingo's pagination block."""

    current_page: int
    prev_page: int | None
    next_page: int | None
    total_pages: int
    total_count: int


class ScalingoMeta(BaseModel):
    """`meta` of a listing."""

    pagination: ScalingoPagination


class ScalingoList(BaseModel):
    """A page of deployments, newest first."""

    deployments: list[ScalingoDeployment]
    meta: ScalingoMeta


class AppLinks(BaseModel):
    """Links of an app."""

    deployments_stream: str = Field(description="ws:// or wss:// URL of the live stream.")


class ScalingoApp(BaseModel):
    """An app (a relay component) as Scalingo shows it."""

    id: str
    name: str
    created_at: str | None
    last_deployed_at: str | None
    last_deployment_id: str | None
    links: AppLinks


class ScalingoAppAnswer(BaseModel):
    """`{"app": …}`."""

    app: ScalingoApp


def _page_params(request: web.Request) -> ScalingoPageParams:
    return parse_query(ScalingoPageParams, request.query)


async def list_deployments(request: web.Request) -> web.Response:
    """The app's deployments, newest first, `page` by `page` (`per_page`, 20 by default)."""
    params = _page_params(request)
    items, total = await request.app[SCALINGO].page(
        request.match_info["app"], params, principal_of(request)
    )
    base = base_url(request)
    body: dict[str, Any] = {
        "deployments": [deployment_view(d, base) for d in items],
        "meta": {"pagination": pagination(params.page, params.per_page, total)},
    }
    return json_answer(body)


async def get_deployment(request: web.Request) -> web.Response:
    """One deployment of the app."""
    record = await request.app[SCALINGO].get(
        request.match_info["app"], request.match_info["deployment_id"], principal_of(request)
    )
    return json_answer({"deployment": deployment_view(record, base_url(request))})


async def trigger(request: web.Request) -> web.Response:
    """Record a deployment in status `building` (`{"deployment": {"git_ref", "source_url"}}`);
    the pipeline moves it along with PATCH and appends its output log."""
    record = await request.app[SCALINGO].trigger(
        request.match_info["app"], await request_fields(request), principal_of(request)
    )
    body = {"deployment": deployment_view(record, base_url(request))}
    return json_answer(body, headers=deployment_location(record))


async def output(request: web.Request) -> web.Response:
    """The deployment's output log as text/plain."""
    text = await request.app[SCALINGO].output(
        request.match_info["app"], request.match_info["deployment_id"], principal_of(request)
    )
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


async def get_app(request: web.Request) -> web.Response:
    """The app, with `links.deployments_stream`: the WebSocket of its live deployments."""
    app = request.match_info["app"]
    facts = await request.app[SCALINGO].app(app, principal_of(request))
    facts["links"] = {"deployments_stream": stream_url(request, app)}
    return json_answer({"app": facts})


async def reset_cache(request: web.Request) -> web.Response:
    """Accepted with 204 so that scripts keep working: relay builds nothing and keeps no
    deployment cache."""
    app = request.match_info["app"]
    check_slug(app)
    principal_of(request).require("events:write", app)
    return web.Response(status=204)


def routes() -> list[Route]:
    """Routes of this module."""
    tag = "scalingo"
    one = BASE + "/deployments/{deployment_id}"
    return [
        Route("GET", BASE, get_app, "Scalingo: get an app", tag, response=ScalingoAppAnswer),
        Route(
            "GET",
            BASE + "/deployments",
            list_deployments,
            "Scalingo: list an app's deployments",
            tag,
            query=ScalingoPageParams,
            response=ScalingoList,
        ),
        Route(
            "POST",
            BASE + "/deployments",
            trigger,
            "Scalingo: trigger (record) a deployment",
            tag,
            body=ScalingoTriggerIn,
            response=ScalingoOne,
        ),
        Route("GET", one, get_deployment, "Scalingo: get a deployment", tag, response=ScalingoOne),
        Route(
            "GET",
            one + "/output",
            output,
            "Scalingo: a deployment's output log",
            tag,
            content_type="text/plain",
        ),
        Route(
            "DELETE",
            BASE + "/caches/deployment",
            reset_cache,
            "Scalingo: reset the deployment cache (nothing to reset)",
            tag,
            status=204,
            errors=frozenset({401, 403, 422, 429, 503}),
        ),
    ]
