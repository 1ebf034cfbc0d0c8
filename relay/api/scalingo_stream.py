"""The Scalingo deployments stream: `GET /v1/apps/{app}/deployments_stream` (WebSocket).

Exactly the frames of Scalingo's document, on relay's live feed (relay/feed/):
the client's first frame is `{"type": "auth", "data": {"token": …}}` (a bad token ends
the socket at once); then the output of the app's latest deployment so far, then live
frames: `{"type": "new", "data": {"deployment": id}}`, `{"type": "log", "id": id,
"data": {"content": line}}`, `{"type": "status", "id": id, "data": {"status": s}}` and
`{"type": "ping", "data": {"ts": unix seconds}}`.
"""

from __future__ import annotations

import json
import time
from typing import Any

import structlog
from aiohttp import WSCloseCode, web

from relay.api.keys import FEED, STORE
from relay.api.middleware import public
from relay.api.routes import Route
from relay.api.scalingo import STREAM
from relay.api.stream import UpgradeRequired, pump, ws_principal
from relay.auth import extract_token
from relay.errors import RelayError
from relay.feed.broker import FeedFilter
from relay.feed.frames import Frame
from relay.records.service import check_slug

log = structlog.get_logger("relay.feed")


def _message(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def log_message(deployment_id: str, line: str) -> str:
    """A Scalingo `log` frame."""
    return _message({"type": "log", "id": deployment_id, "data": {"content": line}})


def scalingo_message(frame: Frame) -> str | None:
    """A relay feed frame as Scalingo's stream sends it; None for frames Scalingo has no
    word for (deliveries, builds, a slow client's `skipped`)."""
    if frame.type == "ping":
        return _message({"type": "ping", "data": {"ts": int(time.time())}})
    if frame.type == "log":
        return log_message(frame.data["deployment_id"], frame.data["content"])
    record = frame.data.get("deployment")
    if not isinstance(record, dict) or record.get("kind") == "build":
        return None
    if frame.type == "new":
        return _message({"type": "new", "data": {"deployment": record["id"]}})
    if frame.type == "status":
        status = {"status": frame.data.get("status")}
        return _message({"type": "status", "id": record["id"], "data": status})
    return None


@public
async def deployments_stream(request: web.Request) -> web.StreamResponse:
    """Scalingo's live deployment output of an app (WebSocket): send the auth frame first
    (a bad token ends the socket at once); then existing and live `log`, `new`, `status`
    and `ping` frames."""
    app = request.match_info["app"]
    ws = web.WebSocketResponse(timeout=2.0, max_msg_size=64 * 1024)
    if not ws.can_prepare(request).ok:
        raise UpgradeRequired("this is a WebSocket: send an Upgrade request")
    check_slug(app)
    token = extract_token(request.headers, request.query)
    await ws.prepare(request)
    store = request.app[STORE]
    try:
        principal, token = await ws_principal(request, ws, token)
        principal.require("events:read", app)
        # The position first, the log so far second: a line appended in between comes
        # twice rather than never.
        position = await store.feed_position()
        wanted = FeedFilter(principal, frozenset({app}), frozenset())
        subscriber = request.app[FEED].subscribe(wanted)
    except RelayError as exc:
        log.info("feed_refused", protocol="scalingo", reason=exc.message)
        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=exc.message.encode()[:120])
        return ws
    try:
        latest = (await store.numbered_page(app, 0, 1)).items
        if latest:
            for line in await store.read_output(latest[0].id):
                await ws.send_str(log_message(latest[0].id, line))
    except (ConnectionError, RelayError):
        request.app[FEED].leave(subscriber)
        return ws
    await pump(request, ws, subscriber, position, token, scalingo_message)
    return ws


def routes() -> list[Route]:
    """Routes of this module."""
    return [
        Route(
            "GET",
            STREAM,
            deployments_stream,
            "Scalingo: live deployment output (WebSocket)",
            "scalingo",
            status=101,
            public=True,
        )
    ]
