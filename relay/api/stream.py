"""The live feed over HTTP: `GET /events` (Server-Sent Events) and `GET /stream` (WebSocket).

Both carry the same frames (`new`, `status`, `log`, `delivery`, `ping`, `skipped`)
from relay.feed.broker; this module only speaks the two wire protocols.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import BaseModel, Field

from relay.api.cookies import cookie_principal
from relay.api.keys import AUTH, FEED, PRINCIPAL, SETTINGS
from relay.api.middleware import public
from relay.api.routes import Route
from relay.auth import Principal, extract_token
from relay.errors import RelayError, Unauthenticated, ValidationFailed
from relay.feed.broker import Feed, FeedFilter, Subscriber
from relay.feed.frames import Frame, parse_id
from relay.store.feed_base import FeedCursor
from relay.tasks import cancel_and_wait

log = structlog.get_logger("relay.feed")
MAX_FILTER_VALUES = 100
# What a WebSocket is closed with when its stream ends, by the reason it ended.
_CLOSE_CODES = {
    "shutdown": WSCloseCode.GOING_AWAY,
    "slow": WSCloseCode.TRY_AGAIN_LATER,
    "revoked": WSCloseCode.POLICY_VIOLATION,
    "error": WSCloseCode.INTERNAL_ERROR,
}
_CLOSE_TEXT = {
    "shutdown": "relay is shutting down",
    "slow": "too slow: reconnect with last_event_id",
    "revoked": "the token was revoked",
    "error": "the store failed; reconnect with last_event_id",
}


class FeedQuery(BaseModel):
    """Query parameters of the live feed."""

    component: str | None = Field(
        default=None, description="Only these components (comma-separated, or repeated)."
    )
    stage: str | None = Field(
        default=None, description="Only these stages (comma-separated, or repeated)."
    )
    last_event_id: str | None = Field(
        default=None,
        description="Resume after this frame id (as the `Last-Event-ID` header does).",
    )


class UpgradeRequired(RelayError):
    status = 426
    code = "upgrade_required"


def _values(request: web.Request, name: str) -> frozenset[str]:
    values = {
        v.strip() for raw in request.query.getall(name, []) for v in raw.split(",") if v.strip()
    }
    if len(values) > MAX_FILTER_VALUES:
        raise ValidationFailed(
            f"too many {name} values",
            details=[{"field": name, "message": f"at most {MAX_FILTER_VALUES}"}],
        )
    return frozenset(values)


def _filters(request: web.Request) -> tuple[frozenset[str], frozenset[str]]:
    return _values(request, "component"), _values(request, "stage")


def _resume_from(request: web.Request) -> FeedCursor | None:
    text = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    return parse_id(text) if text else None


async def _still_valid(request: web.Request, token: str | None) -> bool:
    # Checked at each ping: a revoked token (or an ended dashboard session) stops
    # receiving within one ping interval.
    if token is None:
        return await cookie_principal(request) is not None
    return await request.app[AUTH].authenticate(token) is not None


async def feed_frames(
    request: web.Request, subscriber: Subscriber, after: FeedCursor | None, token: str | None
) -> AsyncIterator[Frame]:
    feed: Feed = request.app[FEED]
    async with contextlib.aclosing(feed.frames(subscriber, after)) as frames:
        async for frame in frames:
            if frame.type == "ping" and not await _still_valid(request, token):
                subscriber.close("revoked")
                return
            yield frame


async def events(request: web.Request) -> web.StreamResponse:
    """The live feed as Server-Sent Events; `Last-Event-ID` replays what was missed."""
    principal = request[PRINCIPAL]
    principal.require("events:read")
    components, stages = _filters(request)
    after = _resume_from(request)
    feed = request.app[FEED]
    subscriber = feed.subscribe(FeedFilter(principal, components, stages))
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # no proxy buffering: frames must flow at once
        }
    )
    token = extract_token(request.headers, request.query)
    log.info("feed_opened", protocol="sse", resumed=after is not None)
    try:
        await response.prepare(request)
        await response.write(b": relay live feed\n\n")
        async for frame in feed_frames(request, subscriber, after, token):
            await response.write(frame.sse)
    except ConnectionError:
        pass  # the client went away
    finally:
        feed.leave(subscriber)
    log.info("feed_closed", protocol="sse", reason=subscriber.closed)
    return response


@public
async def stream(request: web.Request) -> web.StreamResponse:
    """The live feed over a WebSocket (JSON text frames); authenticate with the upgrade
    request or with a first `{"type": "auth", "data": {"token": "…"}}` frame."""
    # Clients send one small auth frame; a close handshake is not awaited for long.
    ws = web.WebSocketResponse(timeout=2.0, max_msg_size=64 * 1024)
    if not ws.can_prepare(request).ok:
        raise UpgradeRequired("GET /stream is a WebSocket: send an Upgrade request")
    components, stages = _filters(request)
    after = _resume_from(request)
    token = extract_token(request.headers, request.query)
    await ws.prepare(request)
    try:
        principal, token = await ws_principal(request, ws, token)
        principal.require("events:read")
        subscriber = request.app[FEED].subscribe(FeedFilter(principal, components, stages))
    except RelayError as exc:
        busy = exc.status in (429, 503)  # a place may free up: the client should retry
        code = WSCloseCode.TRY_AGAIN_LATER if busy else WSCloseCode.POLICY_VIOLATION
        log.info("feed_refused", protocol="websocket", reason=exc.message)
        await ws.close(code=code, message=exc.message.encode()[:120])
        return ws
    structlog.contextvars.bind_contextvars(token_name=principal.name)
    try:
        await pump(request, ws, subscriber, after, token)
    finally:
        structlog.contextvars.unbind_contextvars("token_name")
    return ws


async def ws_principal(
    request: web.Request, ws: web.WebSocketResponse, token: str | None
) -> tuple[Principal, str]:
    """The caller of a WebSocket feed and its token: the upgrade request's token, else the
    one of the client's first frame; RelayError when it is missing or unknown (also the
    Scalingo stream's, scalingo_stream.py)."""
    token = token or await auth_frame(ws, request.app[SETTINGS].feed.auth_timeout)
    principal = await request.app[AUTH].authenticate(token)
    if principal is None:
        raise Unauthenticated("the API token is unknown or revoked")
    return principal, token


async def auth_frame(ws: web.WebSocketResponse, timeout: float) -> str:
    """The token of the client's first frame; RelayError if it is not an auth frame."""
    try:
        message = await ws.receive(timeout=timeout)
    except TimeoutError:
        raise Unauthenticated(f"no auth frame within {timeout:g}s") from None
    if message.type != WSMsgType.TEXT:
        raise Unauthenticated("expected an auth frame")
    try:
        body: Any = json.loads(message.data)
        token = body["data"]["token"] if body.get("type") == "auth" else None
    except (ValueError, TypeError, KeyError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise Unauthenticated('expected {"type": "auth", "data": {"token": "..."}}')
    return token


def _as_is(frame: Frame) -> str | None:
    return frame.message


async def pump(
    request: web.Request,
    ws: web.WebSocketResponse,
    subscriber: Subscriber,
    after: FeedCursor | None,
    token: str,
    encode: Callable[[Frame], str | None] = _as_is,
) -> None:
    """Send frames (as `encode` writes them; None: not sent) until the stream ends or
    the client leaves."""
    reader = asyncio.create_task(read_until_closed(ws, subscriber))
    log.info("feed_opened", protocol="websocket", resumed=after is not None)
    try:
        async for frame in feed_frames(request, subscriber, after, token):
            if (message := encode(frame)) is not None:
                await ws.send_str(message)
    except ConnectionError:
        pass
    finally:
        await cancel_and_wait(reader)
        request.app[FEED].leave(subscriber)
    reason = subscriber.closed or "gone"
    log.info("feed_closed", protocol="websocket", reason=reason)
    if not ws.closed:
        code = _CLOSE_CODES.get(reason, WSCloseCode.OK)
        await ws.close(code=code, message=_CLOSE_TEXT.get(reason, "").encode())


async def read_until_closed(ws: web.WebSocketResponse, subscriber: Subscriber) -> None:
    # Client frames after the auth one mean nothing; reading them notices the close.
    with contextlib.suppress(Exception):
        async for _ in ws:
            pass
    subscriber.close("gone")


def routes() -> list[Route]:
    """Routes of this module."""
    return [
        Route(
            "GET",
            "/events",
            events,
            "Live feed (Server-Sent Events)",
            "feed",
            query=FeedQuery,
            content_type="text/event-stream",
        ),
        Route(
            "GET",
            "/stream",
            stream,
            "Live feed (WebSocket)",
            "feed",
            query=FeedQuery,
            status=101,
            public=True,
        ),
    ]
