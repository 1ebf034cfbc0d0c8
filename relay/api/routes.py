"""The route table: one list feeds both the aiohttp router and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    """One operation of the HTTP API and what the OpenAPI document says about it."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    response_is_list: bool = False
    status: int = 200
    public: bool = False
    content_type: str = "application/json"
    aliases: tuple[str, ...] = ()
    # It honours an Idempotency-Key header (a reused key with another body is a 409).
    idempotent: bool = False
    # It can answer 409 (an invalid move, a disabled target); None: PATCH and DELETE do.
    conflicts: bool | None = None
    # The error statuses the operation can answer; None: derived from the route (openapi.py).
    errors: frozenset[int] | None = None
    # More answers a public route documents (a public route that checks access itself).
    answers: tuple[str, ...] = ()


def answers_head(route: Route) -> bool:
    """Whether HEAD is served like GET: every GET route but the live feeds, whose answer
    is a stream (an uptime monitor's HEAD would hold it open)."""
    streams = route.content_type == "text/event-stream" or route.status == 101
    return route.method == "GET" and not streams


def register(app: web.Application, routes: list[Route]) -> None:
    """Add every route (and its aliases, e.g. the trailing-slash form) to the router;
    HEAD runs the GET handler and aiohttp leaves the body out."""
    for route in routes:
        for path in (route.path, *route.aliases):
            app.router.add_route(route.method, path, route.handler)
            if answers_head(route):
                app.router.add_route("HEAD", path, route.handler)
