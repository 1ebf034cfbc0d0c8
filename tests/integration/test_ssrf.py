"""The SSRF guard with real HTTP: loopback targets are refused unless allowed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay.delivery.http import AiohttpTransport, HttpRequest
from relay.delivery.netguard import AddressRefused, parse_networks
from relay.standins.webhook import WebhookReceiver
from tests.delivery_support import SECRET, engine_settings, running_engine, webhook

REASON = "refused: 127.0.0.1 is a loopback address; allow it with security.allow_networks"


@pytest.fixture
async def recv() -> AsyncIterator[WebhookReceiver]:
    """A Standard Webhooks receiver on 127.0.0.1."""
    receiver = WebhookReceiver(SECRET)
    await receiver.start()
    yield receiver
    await receiver.stop()


async def test_webhook_to_loopback_is_dead_without_the_allow_list(
    tmp_path: Path, recv: WebhookReceiver
) -> None:
    """A webhook to 127.0.0.1 with no allow-list is dead at once with the reason; nothing
    reaches the receiver."""
    db = tmp_path / "relay.db"
    settings = engine_settings(db, [webhook("hook", recv.endpoint)], security={})
    async with running_engine(settings, db) as engine:
        dep = await engine.record()
        found = await engine.settled(dep, "hook", "dead")
    assert found.attempts == 1
    assert found.last_error == REASON
    assert recv.received == []


async def test_a_name_resolving_to_loopback_is_refused(recv: WebhookReceiver) -> None:
    """`localhost` goes through the resolver: its loopback addresses are refused at connect."""
    url = recv.endpoint.replace("127.0.0.1", "localhost")
    transport = AiohttpTransport()
    try:
        with pytest.raises(AddressRefused, match=r"^refused: localhost resolves to "):
            await transport.send(HttpRequest("POST", url, body=b"{}"), timeout=5)
    finally:
        await transport.close()
    assert recv.received == []


async def test_the_allow_list_lets_loopback_through(recv: WebhookReceiver) -> None:
    """With 127.0.0.0/8 allowed, the same name and literal address are connected to."""
    transport = AiohttpTransport(allow_networks=parse_networks(["127.0.0.0/8", "::1/128"]))
    try:
        for url in (recv.endpoint, recv.endpoint.replace("127.0.0.1", "localhost")):
            await transport.send(HttpRequest("POST", url, body=b"{}"), timeout=5)
    finally:
        await transport.close()
    assert len(recv.received) == 2


async def test_a_refused_address_is_refused_on_every_send(recv: WebhookReceiver) -> None:
    """The guard's answer for a literal address holds for each send, not only the first."""
    transport = AiohttpTransport()
    try:
        for _ in range(3):
            with pytest.raises(AddressRefused, match=r"^refused: 127\.0\.0\.1 is a loopback"):
                await transport.send(HttpRequest("POST", recv.endpoint, body=b"{}"), timeout=5)
    finally:
        await transport.close()
    assert recv.received == []
