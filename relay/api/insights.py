"""Handlers of badges (SVG, shields.io endpoint JSON) and of the DORA keys.

Badge routes are public to the auth middleware: the handler decides (a public component,
a badge key, or an `events:read` token), because a badge is embedded where no token may
appear."""

from __future__ import annotations

import re
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, Field, field_validator

from relay.api.keys import AUTH, INSIGHTS
from relay.api.middleware import public
from relay.api.records import json_answer, principal_of
from relay.api.routes import Route
from relay.auth import Principal, extract_token
from relay.errors import Unauthenticated
from relay.insights.badges import (
    BadgeSpec,
    Style,
    endpoint_json,
    entity_tag,
    not_modified,
    render_svg,
)
from relay.insights.service import BadgeRequest
from relay.models import Kind, ShortText
from relay.records.service import check_slug, parse_query

M = TypeVar("M", bound=BaseModel)
_WINDOW = re.compile(r"^([0-9]{1,3})d?\Z")


class BadgeParams(BaseModel):
    """Query parameters of a badge."""

    stage: ShortText | None = Field(default=None, description="Default: any stage.")
    kind: Kind = Field(default="deployment", description="`build`: the latest build's badge.")
    label: ShortText | None = Field(default=None, description="Default: the stage (or kind).")
    style: Style = "flat"
    key: str | None = Field(
        default=None, max_length=200, description="Badge key (`relay badges url`)."
    )


class ShieldsEndpoint(BaseModel):
    """The shields.io endpoint schema (`img.shields.io/endpoint?url=…`)."""

    schemaVersion: int
    label: str
    message: str
    color: str
    isError: bool


class DoraParams(BaseModel):
    """Query parameters of the DORA keys."""

    component: str | None = Field(default=None, description="Default: every readable one.")
    stage: ShortText = "production"
    window: int = Field(default=30, ge=1, le=365, description="Days, 1-365: `30d` or `30`.")

    @field_validator("window", mode="before")
    @classmethod
    def _days(cls, value: object) -> object:
        if isinstance(value, str):
            found = _WINDOW.match(value.strip())
            if found is None:
                raise ValueError("use a number of days from 1 to 365, e.g. 30d")
            return int(found.group(1))
        return value


def _params(model: type[M], request: web.Request) -> M:
    return parse_query(model, request.query)


async def _caller(request: web.Request) -> Principal | None:
    token = extract_token(request.headers, request.query)
    if token is None:
        return None
    principal = await request.app[AUTH].authenticate(token)
    if principal is None:
        raise Unauthenticated("the API token is unknown or revoked")
    return principal


async def _badge(request: web.Request) -> tuple[BadgeParams, BadgeSpec, str]:
    params = _params(BadgeParams, request)
    component = request.match_info["slug"]
    check_slug(component)
    service = request.app[INSIGHTS]
    caller = None if params.key else await _caller(request)
    access = await service.admit(component, params.key, caller)
    spec = await service.badge(BadgeRequest(component, params.kind, params.stage, params.label))
    return params, spec, access


def _cached(request: web.Request, body: bytes, content_type: str, access: str) -> web.Response:
    """The answer with its ETag, or 304 when the client has it already."""
    etag = entity_tag(body)
    scope = "private" if access == "token" else "public"
    headers = {
        "ETag": etag,
        "Cache-Control": f"{scope}, max-age={request.app[INSIGHTS].config.max_age}",
        "X-Content-Type-Options": "nosniff",
    }
    if not_modified(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers={**headers, "Content-Type": content_type})


@public
async def badge_svg(request: web.Request) -> web.Response:
    """The badge as SVG."""
    params, spec, access = await _badge(request)
    body = render_svg(spec, params.style).encode()
    response = _cached(request, body, "image/svg+xml; charset=utf-8", access)
    # Opened on its own, an SVG is a document: it may not run or load anything.
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


@public
async def badge_json(request: web.Request) -> web.Response:
    """The badge in the shields.io endpoint schema."""
    _, spec, access = await _badge(request)
    body = json_answer(endpoint_json(spec)).body
    assert isinstance(body, bytes)
    return _cached(request, body, "application/json; charset=utf-8", access)


async def dora(request: web.Request) -> web.Response:
    """The four DORA keys for a component (or every readable one) and stage."""
    params = _params(DoraParams, request)
    if params.component is not None:
        check_slug(params.component)
    answer = await request.app[INSIGHTS].dora(
        principal_of(request), params.component, params.stage, params.window
    )
    return json_answer(answer)


# A badge decides access itself: public, a badge key, or a token.
BADGE_ANSWERS = ("304", "401", "403", "422", "503")


def routes() -> list[Route]:
    """Routes of this module."""
    return [
        Route(
            "GET",
            "/components/{slug}/badge.svg",
            badge_svg,
            "Badge of the live version (SVG)",
            "insights",
            query=BadgeParams,
            public=True,
            content_type="image/svg+xml",
            answers=BADGE_ANSWERS,
        ),
        Route(
            "GET",
            "/components/{slug}/badge.json",
            badge_json,
            "Badge in the shields.io endpoint schema",
            "insights",
            query=BadgeParams,
            response=ShieldsEndpoint,
            public=True,
            answers=BADGE_ANSWERS,
        ),
        Route(
            "GET",
            "/insights/dora",
            dora,
            "The four DORA keys",
            "insights",
            query=DoraParams,
        ),
    ]
