"""`relay serve` on a PostgreSQL database that is down when it starts: it serves /healthz,
answers /readyz (and the API) with 503 while it retries, says so in its log without the
password, and works normally, deliveries included, once the database is reachable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest

from relay.standins.webhook import WebhookReceiver
from tests.acceptance.instance import Instance
from tests.acceptance.pg_support import TcpProxy, call, write_config
from tests.delivery_support import SECRET, eventually, free_port

pytestmark = pytest.mark.slow


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for talking to the subprocess."""
    async with aiohttp.ClientSession() as session:
        yield session


async def test_a_database_down_at_start_is_waited_for(
    pg_url: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """Down: /healthz 200, /readyz and the API 503, `store_unavailable` logged with attempt
    and delay. Up: /readyz 200, events recorded and delivered. The password never shows."""
    parts = urlsplit(pg_url)
    assert parts.hostname and parts.port and parts.password
    proxy = TcpProxy(free_port(), parts.port)
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}"
    url = urlunsplit(parts._replace(netloc=netloc))
    receiver = WebhookReceiver(SECRET)
    await receiver.start()
    config = write_config(tmp_path / "relay.toml", url, {"hook": receiver.endpoint})
    relay = Instance(config, tmp_path / "relay.log")
    try:
        await relay.start(http, ready=False)
        async with http.get(relay.url + "/readyz") as response:
            assert response.status == 503
            assert "not reachable" in (await response.json())["reason"]
        status, body = await call(
            http, "POST", f"{relay.url}/components/api/deployments", {"version": "1.0.0"}
        )
        assert status == 503 and body["error"]["code"] == "store_unavailable"

        await proxy.start()  # the database comes up

        async def ready() -> bool:
            async with http.get(relay.url + "/readyz") as response:
                return response.status == 200

        await eventually(ready, timeout=20, what="/readyz once the database is up")
        status, body = await call(
            http, "POST", f"{relay.url}/components/api/deployments", {"version": "1.0.1"}
        )
        assert status == 201, body
        await eventually(lambda: len(receiver.events) == 1, what="the event delivered")
    finally:
        await relay.stop()
        await proxy.stop()
        await receiver.stop()
    waits = relay.log_events("store_unavailable")
    assert waits and all({"attempt", "delay", "url"} <= set(w) for w in waits)
    assert [w["attempt"] for w in waits] == list(range(1, len(waits) + 1))
    assert f"127.0.0.1:{proxy.port}" in waits[0]["url"]
    assert relay.log_events("store_opened")
    assert parts.password not in relay.log.read_text()
