"""Clients of the live feed for the acceptance tests: a small Server-Sent Events reader and
WebSocket helpers, plus the settings of a relay with a webhook forwarder and feed options."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse, ClientWebSocketResponse, WSMsgType

from relay.settings import Settings, build_settings
from tests.delivery_support import FAST_DELIVERY
from tests.support import ALLOW_LOOPBACK, TOKENS, sqlite_url


@dataclass(frozen=True)
class Received:
    """One frame as a client saw it."""

    type: str
    data: Any
    id: str | None


def feed_settings(
    db: Path, forwarders: list[dict[str, Any]] | None = None, **feed: Any
) -> Settings:
    """A relay on `db` with the test tokens, `forwarders` and `[feed]` options (pings rare
    unless asked for, so that they do not get in the way)."""
    return build_settings(
        {
            "storage": {"url": sqlite_url(db)},
            "tokens": TOKENS,
            "logging": {"format": "json"},
            "delivery": FAST_DELIVERY,
            "feed": {"ping_interval": "60s", **feed},
            "forwarders": forwarders or [],
            "security": ALLOW_LOOPBACK,
        }
    )


class SseReader:
    """Reads `text/event-stream` blocks from a streaming response."""

    def __init__(self, response: ClientResponse) -> None:
        self.response = response

    async def next(self, timeout: float = 5.0) -> Received:
        """The next frame (comments skipped); AssertionError at the end of the stream."""
        fields: dict[str, str] = {}
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.response.content.readline()
                assert raw, "the event stream ended"
                line = raw.decode("utf-8").rstrip("\n")
                if line.startswith(":"):
                    continue
                if line:
                    name, _, value = line.partition(": ")
                    fields[name] = value
                    continue
                if fields:
                    data = json.loads(fields["data"])
                    return Received(fields.get("event", "message"), data, fields.get("id"))

    async def frames(self, n: int, *, skip: tuple[str, ...] = ("ping",)) -> list[Received]:
        """The next `n` frames whose type is not in `skip`."""
        out: list[Received] = []
        while len(out) < n:
            frame = await self.next()
            if frame.type not in skip:
                out.append(frame)
        return out

    async def ended(self, timeout: float = 5.0) -> bool:
        """True once the server ended the stream (EOF)."""
        async with asyncio.timeout(timeout):
            while await self.response.content.readline():
                pass
        return True


async def ws_frame(ws: ClientWebSocketResponse, timeout: float = 5.0) -> Received:
    """The next JSON text frame of a WebSocket; AssertionError if it closes instead."""
    message = await ws.receive(timeout=timeout)
    assert message.type == WSMsgType.TEXT, (message.type, message.data, message.extra)
    body = json.loads(message.data)
    return Received(body["type"], body["data"], body.get("id"))


async def ws_frames(
    ws: ClientWebSocketResponse, n: int, *, skip: tuple[str, ...] = ("ping",)
) -> list[Received]:
    """The next `n` frames whose type is not in `skip`."""
    out: list[Received] = []
    while len(out) < n:
        frame = await ws_frame(ws)
        if frame.type not in skip:
            out.append(frame)
    return out


async def ws_closed(ws: ClientWebSocketResponse, timeout: float = 5.0) -> tuple[int | None, str]:
    """Wait for the server to close the WebSocket: its close code and reason."""
    message = await ws.receive(timeout=timeout)
    assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING), message
    return ws.close_code, str(message.extra or "")
