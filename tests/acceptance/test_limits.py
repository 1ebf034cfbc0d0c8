"""Abuse limits on a whole relay over real HTTP: per-token rate limit, per-client cap,
request head size, live-feed subscriber cap (tested in test_feed.py)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from relay.settings import LimitsSettings
from tests.acceptance.api import assert_error, bearer
from tests.acceptance.served import serve
from tests.support import READ_TOKEN, make_settings


async def _relay(
    aiohttp_client: AiohttpClient, db_path: Path, **limits: Any
) -> TestClient[Any, Any]:
    settings = make_settings(db_path)
    settings.limits = LimitsSettings(**limits)
    return await aiohttp_client(await serve(settings))


async def test_a_token_over_its_rate_gets_429_with_retry_after(
    aiohttp_client: AiohttpClient, db_path: Path
) -> None:
    """Past `burst` requests a token is answered 429 with an integer Retry-After."""
    client = await _relay(aiohttp_client, db_path, requests_per_second=0.5, burst=3)
    for _ in range(3):
        assert (await client.get("/components", headers=bearer())).status == 200
    response = await client.get("/components", headers=bearer())
    body = await assert_error(response, 429, "rate_limited")
    assert re.fullmatch(r"[1-9]\d*", response.headers["Retry-After"])
    assert int(response.headers["Retry-After"]) == body["retry_after"] == 2


async def test_the_rate_limit_is_per_token_and_spares_probes(
    aiohttp_client: AiohttpClient, db_path: Path
) -> None:
    """Another token and /healthz, /readyz, /metrics still answer while one token is limited."""
    client = await _relay(aiohttp_client, db_path, requests_per_second=0.1, burst=1)
    await client.get("/components", headers=bearer())
    assert (await client.get("/components", headers=bearer())).status == 429
    assert (await client.get("/components", headers=bearer(READ_TOKEN))).status == 200
    for path in ("/healthz", "/readyz", "/metrics"):
        for _ in range(3):
            response = await client.get(path, headers=bearer())
            assert response.status == 200, path


async def test_no_rate_limit_by_default(aiohttp_client: AiohttpClient, db_path: Path) -> None:
    """Without `[limits] requests_per_second` many quick requests all succeed."""
    client = await _relay(aiohttp_client, db_path)
    statuses = {(await client.get("/components", headers=bearer())).status for _ in range(150)}
    assert statuses == {200}


async def test_a_client_over_its_connection_cap_gets_429(
    aiohttp_client: AiohttpClient, db_path: Path
) -> None:
    """With an open stream at the cap, the same address is refused until the stream ends."""
    client = await _relay(aiohttp_client, db_path, max_connections_per_client=1)
    stream = await client.get("/events", headers=bearer())
    assert stream.status == 200
    response = await client.get("/components", headers=bearer())
    await assert_error(response, 429, "too_many_connections")
    assert response.headers["Retry-After"] == "1"
    assert (await client.get("/healthz")).status == 200
    stream.close()
    deadline = asyncio.get_running_loop().time() + 5
    while (status := (await client.get("/components", headers=bearer())).status) != 200:
        assert status == 429 and asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)


async def test_a_too_large_header_gets_a_clean_4xx(
    aiohttp_client: AiohttpClient, db_path: Path
) -> None:
    """A header longer than `max_header_bytes` is refused with a 4xx, no traceback."""
    client = await _relay(aiohttp_client, db_path, max_header_bytes=2048)
    response = await client.get("/components", headers={**bearer(), "X-Big": "a" * 4096})
    assert response.status == 400  # aiohttp refuses the head before any handler runs
    assert "Traceback" not in await response.text()
    ok = await client.get("/components", headers={**bearer(), "X-Big": "a" * 1000})
    assert ok.status == 200


async def test_a_too_long_request_line_gets_a_clean_4xx(
    aiohttp_client: AiohttpClient, db_path: Path
) -> None:
    """A request line longer than `max_line_bytes` is refused with a 4xx, no traceback."""
    client = await _relay(aiohttp_client, db_path, max_line_bytes=2048)
    response = await client.get("/components?x=" + "a" * 4096, headers=bearer())
    assert response.status == 400  # aiohttp refuses the head before any handler runs
    assert "Traceback" not in await response.text()
