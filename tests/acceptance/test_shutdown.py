"""Graceful shutdown of `relay serve`: SIGTERM or SIGINT closes the listener, answers the
requests being handled, lets a send in flight finish within `delivery.shutdown_grace`,
records its outcome, frees leases and exits 0."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from relay.standins.webhook import WebhookReceiver
from tests.acceptance.instance import Instance, webhook_config
from tests.acceptance.test_crash import DELIVERY, delivery_of
from tests.delivery_support import SECRET, eventually, free_port
from tests.support import CI_TOKEN

pytestmark = pytest.mark.slow

HOLD = 3.0  # how long the slow target holds each send (5 s forwarder timeout)


class SlowReceiver(WebhookReceiver):
    """A webhook target that signals when a send arrives and answers it HOLD s later."""

    def __init__(self) -> None:
        super().__init__(SECRET)
        self.arrived = asyncio.Event()

    async def _handle(self, request: web.Request, body: bytes) -> tuple[int, Any]:
        self.arrived.set()
        await asyncio.sleep(HOLD)
        return await super()._handle(request, body)


def write_config(tmp_path: Path, hook_port: int) -> Path:
    """The crash test's config with a 10 s shutdown grace and a 5 s timeout."""
    text = webhook_config(
        tmp_path / "relay.db",
        hook_port,
        delivery=DELIVERY.replace('shutdown_grace = "1s"', 'shutdown_grace = "10s"'),
        forwarder='timeout = "5s"\nretry = { schedule = ["0.3s"], jitter = 0 }',
    )
    path = tmp_path / "relay.toml"
    path.write_text(text)
    return path


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for talking to the subprocess."""
    async with aiohttp.ClientSession() as session:
        yield session


async def half_sent_request(port: int, body: bytes) -> tuple[asyncio.StreamReader, Any]:
    """Open a POST, send its headers and half its body; return (reader, writer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        "POST /components/api/deployments HTTP/1.1\r\nHost: relay\r\n"
        f"Authorization: Bearer {CI_TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode() + body[: len(body) // 2])
    await writer.drain()
    return reader, writer


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_lets_sends_and_requests_in_flight_finish_and_exits_0(
    tmp_path: Path, http: aiohttp.ClientSession, sig: signal.Signals
) -> None:
    """A send and a request in flight at SIGTERM/SIGINT both complete; relay exits 0."""
    hook_port = free_port()
    receiver = SlowReceiver()
    await receiver.start(port=hook_port)
    server = Instance(write_config(tmp_path, hook_port), tmp_path / "relay.log")
    headers = {"Authorization": f"Bearer {CI_TOKEN}"}
    try:
        await server.start(http, ready=False)
        body = {"version": "1.0.0", "stage": "production", "result": "success"}
        async with http.post(
            f"{server.url}/components/api/deployments", json=body, headers=headers
        ) as response:
            assert response.status == 201, await response.text()
            dep = (await response.json())["id"]
        await asyncio.wait_for(receiver.arrived.wait(), 10)  # the send is now held
        payload = json.dumps({**body, "version": "1.0.1"}).encode()
        reader, writer = await half_sent_request(server.port, payload)
        # Once a later request is answered, the half-sent one is being handled.
        async with http.get(f"{server.url}/healthz") as health:
            assert health.status == 200

        assert server.proc is not None
        server.proc.send_signal(sig)

        # The listener closes: a new connection is refused while the old ones finish.
        async def refused() -> bool:
            try:
                _, w = await asyncio.open_connection("127.0.0.1", server.port)
            except OSError:
                return True
            w.close()
            await w.wait_closed()
            return False

        try:
            await eventually(refused, timeout=HOLD, what="the listener is closed")
            writer.write(payload[len(payload) // 2 :])
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()
        assert answer.startswith(b"HTTP/1.1 201"), answer[:200]

        code = await asyncio.wait_for(server.proc.wait(), 15)
        assert code == 0, server.output()
        assert receiver.accepted, server.output()
        lines = [json.loads(line) for line in server.output().splitlines() if line[:1] == "{"]
        assert any(line.get("requests_in_flight") == 1 for line in lines), server.output()
        assert '"relay_stopped"' in server.output()

        # Restarted with the target gone: the held send was recorded as delivered.
        await receiver.stop()
        await server.start(http, ready=False)
        found = await delivery_of(http, server, dep, "delivered")
        assert found is not None and found["attempts"] == 1, found
    finally:
        await server.stop()
        await receiver.stop()
