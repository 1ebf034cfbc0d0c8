"""A target that echoes the request back (path, query, Authorization) leaves none of the
webhook URL's secret parts in stored attempts or answers."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.delivery_support import engine_settings, running_engine, webhook

SEGMENT = "Zq81SeCrEt42"
SIG = "s1gn4ture-xyz"
PASSWORD = "pa55-w0rd-hook"
BASIC = base64.b64encode(f"hook-user:{PASSWORD}".encode()).decode()


@pytest.fixture
async def echo() -> AsyncIterator[tuple[str, list[int]]]:
    """A loopback target that quotes the request line and Authorization back; answers
    200 first, then 400."""
    statuses = [200, 400]

    async def handler(request: web.Request) -> web.Response:
        status = statuses.pop(0) if statuses else 400
        text = f"Cannot {request.method} {request.path_qs} ({request.headers.get('Authorization')})"
        return web.Response(status=status, text=text)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://hook-user:{PASSWORD}@127.0.0.1:{port}/hooks/{SEGMENT}?sig={SIG}", statuses
    await runner.cleanup()


async def test_echoed_url_parts_are_masked_in_stored_attempts(
    tmp_path: Path, echo: tuple[str, list[int]]
) -> None:
    """Path segment, query value and the Basic credential are `***` in every excerpt and
    error, for a delivered event and a refused one."""
    url, _ = echo
    db = tmp_path / "relay.db"
    settings = engine_settings(db, [webhook("hook", url)])
    async with running_engine(settings, db) as engine:
        delivered = await engine.settled(await engine.record(), "hook", "delivered")
        dead = await engine.settled(await engine.record(), "hook", "dead")
    assert delivered.attempt_log and dead.attempt_log
    text = "\n".join(d.model_dump_json() for d in (delivered, dead))
    assert "Cannot POST /hooks/***?sig=***" in text
    for secret in (SEGMENT, SIG, PASSWORD, BASIC):
        assert secret not in text
