"""Middlewares: request id and access log, JSON errors, abuse limits, authentication."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from relay.api.cookies import check_same_site, cookie_principal, session_secret
from relay.api.forwarded import origin
from relay.api.keys import AUTH, PRINCIPAL, REQUEST_ID, SETTINGS
from relay.api.limits import ConnectionCounter, RateLimiter, retry_after
from relay.auth import Principal, extract_token
from relay.errors import (
    BodyTooLarge,
    MethodNotAllowed,
    NotFound,
    RelayError,
    TooManyConnections,
    TooManyRequests,
    Unauthenticated,
)
from relay.ids import new_hex_id

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = structlog.get_logger("relay.http")

PUBLIC_ATTR = "relay_public"

H = TypeVar("H")


def public(handler: H) -> H:
    """Mark a handler as reachable without a token."""
    setattr(handler, PUBLIC_ATTR, True)
    return handler


def error_response(exc: RelayError, request_id: str | None = None) -> web.Response:
    """The JSON answer of a RelayError."""
    headers = {"X-Request-ID": request_id} if request_id else {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="relay"'
    if exc.status == 405 and isinstance(allowed := exc.extra.get("allowed_methods"), list):
        headers["Allow"] = ", ".join(allowed)  # RFC 9110: a 405 must say what is allowed
    if exc.status == 429 and isinstance(wait := exc.extra.get("retry_after"), int):
        headers["Retry-After"] = str(wait)
    response = web.json_response(exc.to_json(), status=exc.status, headers=headers)
    if exc.status == 408:
        response.force_close()  # the rest of a body that came too slowly is not waited for
    return response


def _from_http_exception(exc: web.HTTPException) -> RelayError:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return MethodNotAllowed(
            f"method {exc.method} is not allowed here; use {allowed}",
            extra={"allowed_methods": sorted(exc.allowed_methods)},
        )
    if isinstance(exc, web.HTTPNotFound):
        return NotFound("no such route")
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return BodyTooLarge("the body is larger than the configured limit")
    error = RelayError(exc.reason)
    error.status, error.code = exc.status, exc.reason.lower().replace(" ", "_")
    return error


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give each request an id, turn every failure into JSON, log one line per request."""
    incoming = request.headers.get("X-Request-ID", "")
    request_id = incoming if 0 < len(incoming) <= 100 else new_hex_id()
    request[REQUEST_ID] = request_id
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await _answer(request, handler, request_id)
        status = response.status
        if not response.prepared:
            response.headers["X-Request-ID"] = request_id
        return response
    except web.HTTPException as exc:
        status = exc.status  # a redirect (errors are answered by _answer)
        raise
    except asyncio.CancelledError:
        status = CLIENT_CLOSED
        raise
    finally:
        log.info(
            "http_request",
            method=request.method,
            path=request.path,  # never the query string: it may carry access_token
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        structlog.contextvars.unbind_contextvars("request_id")


async def _answer(request: web.Request, handler: Handler, request_id: str) -> web.StreamResponse:
    try:
        return await handler(request)
    except RelayError as exc:
        return error_response(exc, request_id)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(_from_http_exception(exc), request_id)
    except Exception:
        log.exception("unhandled_error", method=request.method, path=request.path)
        return error_response(RelayError("internal error; see the server log"), request_id)


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the request's token to a Principal unless the route is public."""
    route_handler = request.match_info.handler
    if getattr(route_handler, PUBLIC_ATTR, False) or request.match_info.http_exception:
        return await handler(request)
    principal = await principal_for(request)
    request[PRINCIPAL] = principal
    structlog.contextvars.bind_contextvars(token_name=principal.name)
    try:
        return await handler(request)
    finally:
        structlog.contextvars.unbind_contextvars("token_name")


async def principal_for(request: web.Request) -> Principal:
    """Who sent the request: its API token's principal, else its dashboard session's."""
    token = extract_token(request.headers, request.query)
    if token is None:
        return await _signed_in(request)
    principal = await request.app[AUTH].authenticate(token)
    if principal is None:
        raise Unauthenticated("the API token is unknown or revoked")
    return principal


async def _signed_in(request: web.Request) -> Principal:
    """The principal of the dashboard session cookie (cross-site calls refused)."""
    secret = session_secret(request)
    principal = await cookie_principal(request) if secret is not None else None
    if secret is None or principal is None:
        raise Unauthenticated(
            "no API token: send `Authorization: Bearer <token>` or `?access_token=<token>`"
            if secret is None
            else "the session has ended; sign in again"
        )
    check_same_site(request, secret)
    return principal


# Logged for a request whose client went away before its answer (nginx's code for it).
CLIENT_CLOSED = 499

# Probes and scrapes must keep working while a client is being refused.
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def client_cap(counter: ConnectionCounter) -> Middleware:
    """Refuse (429) a client address with `counter.limit` requests already in progress.

    The address is the forwarded client's when the peer is a trusted proxy.

    Open SSE and WebSocket streams count: they are requests in progress. Health,
    readiness and metrics are exempt.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        client = origin(request, request.app[SETTINGS].server).client
        if not counter.limit or request.path in UNLIMITED_PATHS:
            return await handler(request)
        if not counter.acquire(client):
            log.warning("client_cap_reached", client=client, limit=counter.limit)
            raise TooManyConnections(
                f"too many requests in progress from this address (limit {counter.limit})",
                extra={"retry_after": 1},
            )
        try:
            return await handler(request)
        finally:
            counter.release(client)

    return middleware


def rate_limit(limiter: RateLimiter, clock: Callable[[], float] = time.monotonic) -> Middleware:
    """Answer 429 with `Retry-After` once a token is over its request rate (runs after
    `authenticate`: anonymous requests reach only public routes, which are exempt)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        principal = request.get(PRINCIPAL)
        if principal is None or not limiter.enabled or request.path in UNLIMITED_PATHS:
            return await handler(request)
        wait = limiter.take(principal.name, clock())
        if wait > 0:
            log.warning("rate_limited", token_name=principal.name)
            raise TooManyRequests(
                f"over the limit of {limiter.rate:g} requests a second for this token; retry later",
                extra={"retry_after": retry_after(wait)},
            )
        return await handler(request)

    return middleware
