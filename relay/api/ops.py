"""Operational endpoints: liveness, readiness, the API description."""

from __future__ import annotations

from pathlib import Path

import structlog
from aiohttp import web
from pydantic import BaseModel

from relay import __version__
from relay.api.keys import OPENAPI, STORE
from relay.api.middleware import principal_for, public
from relay.api.records import json_answer
from relay.api.routes import Route
from relay.api.ui import SECURITY_HEADERS
from relay.auth import extract_token
from relay.errors import StoreError

DOCS_PAGE = Path(__file__).with_name("docs.html")
log = structlog.get_logger("relay.http")


class Health(BaseModel):
    """Answer of /healthz and /readyz."""

    status: str
    reason: str | None = None


class Root(BaseModel):
    """Answer of `GET /`: who answers, and who asked."""

    service: str = "relay"
    version: str
    token: str
    docs: str = "/docs"
    openapi: str = "/openapi.json"


@public
async def root(request: web.Request) -> web.Response:
    """Check a token (the API documents' authentication examples call `/`): the name of
    the token and where the API is described. A browser asking for a page without a
    token is sent to the dashboard instead."""
    navigating = "text/html" in request.headers.get("Accept", "")
    if navigating and extract_token(request.headers, request.query) is None:
        raise web.HTTPFound("/ui/", headers=SECURITY_HEADERS)
    answer = Root(version=__version__, token=(await principal_for(request)).name)
    return json_answer(answer.model_dump())


@public
async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return json_answer({"status": "ok"})


@public
async def readyz(request: web.Request) -> web.Response:
    """Readiness: the store answers and its migrations are applied (503 otherwise)."""
    try:
        await request.app[STORE].ping()
    except StoreError as exc:
        return json_answer({"status": "unavailable", "reason": exc.message}, status=503)
    except Exception as exc:
        # A store that fails in an unexpected way (e.g. already closed) is not ready either.
        log.warning("readiness_check_failed", error=repr(exc))
        return json_answer({"status": "unavailable", "reason": "the store does not answer"}, 503)
    return json_answer({"status": "ready"})


@public
async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of this API."""
    return json_answer(request.app[OPENAPI])


@public
async def docs(request: web.Request) -> web.Response:
    """A readable page of the API, rendered in the browser from /openapi.json."""
    return web.Response(text=DOCS_PAGE.read_text(encoding="utf-8"), content_type="text/html")


def routes() -> list[Route]:
    """Routes of this module."""
    return [
        Route(
            "GET",
            "/",
            root,
            "Check a token",
            "operations",
            response=Root,
            errors=frozenset({401, 429, 503}),
        ),
        Route("GET", "/healthz", healthz, "Liveness", "operations", response=Health, public=True),
        Route(
            "GET",
            "/readyz",
            readyz,
            "Readiness",
            "operations",
            response=Health,
            public=True,
            errors=frozenset({429, 503}),
        ),
        Route(
            "GET",
            "/openapi.json",
            openapi_json,
            "This API as OpenAPI 3.1",
            "operations",
            public=True,
        ),
        Route(
            "GET",
            "/docs",
            docs,
            "API documentation page",
            "operations",
            public=True,
            content_type="text/html",
        ),
    ]
