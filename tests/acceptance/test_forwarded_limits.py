"""The per-client connection cap behind a reverse proxy: clients are told apart by the
forwarded address only when the proxy is trusted (`server.trusted_proxies`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from relay.settings import LimitsSettings, ServerSettings
from tests.acceptance.api import assert_error, bearer
from tests.acceptance.served import serve
from tests.support import make_settings


async def _relay(
    aiohttp_client: AiohttpClient, db_path: Path, trusted: list[str]
) -> TestClient[Any, Any]:
    settings = make_settings(db_path)
    settings.limits = LimitsSettings(max_connections_per_client=1)
    settings.server = ServerSettings(trusted_proxies=trusted)
    return await aiohttp_client(await serve(settings))


def _from(client: str) -> dict[str, str]:
    return {**bearer(), "X-Forwarded-For": client}


async def test_clients_behind_a_trusted_proxy_have_a_cap_each(
    aiohttp_client: AiohttpClient, db_path: Path
) -> None:
    """Through the loopback proxy, one client's open stream does not refuse another client."""
    client = await _relay(aiohttp_client, db_path, ["127.0.0.1/32", "::1/128"])
    stream = await client.get("/events", headers=_from("198.51.100.1"))
    assert stream.status == 200
    assert (await client.get("/components", headers=_from("198.51.100.2"))).status == 200
    refused = await client.get("/components", headers=_from("198.51.100.1"))
    await assert_error(refused, 429, "too_many_connections")
    stream.close()


async def test_forwarded_addresses_from_an_untrusted_peer_are_ignored(
    aiohttp_client: AiohttpClient, db_path: Path
) -> None:
    """With no trusted proxy, X-Forwarded-For cannot buy a client another slot."""
    client = await _relay(aiohttp_client, db_path, [])
    stream = await client.get("/events", headers=_from("198.51.100.1"))
    assert stream.status == 200
    refused = await client.get("/components", headers=_from("198.51.100.2"))
    await assert_error(refused, 429, "too_many_connections")
    stream.close()
