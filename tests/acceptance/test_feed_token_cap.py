"""One token cannot take every place of the live feed: past
`feed.max_subscribers_per_token` its new streams are refused, other tokens still get one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import WSCloseCode
from pytest_aiohttp import AiohttpClient

from relay.app import create_app
from tests.acceptance.api import assert_error, bearer
from tests.acceptance.feed_support import feed_settings, ws_closed
from tests.support import ADMIN_TOKEN, READ_TOKEN


async def test_a_token_at_its_stream_cap_is_refused_and_others_are_not(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    """The reader's third stream is 429 (SSE) or 1013 (WebSocket); admin still subscribes,
    and a closed stream frees the reader's place."""
    settings = feed_settings(tmp_path / "relay.db", max_subscribers=10, max_subscribers_per_token=2)
    client = await aiohttp_client(create_app(settings))
    streams = [await client.get("/events", headers=bearer(READ_TOKEN)) for _ in range(2)]
    assert [s.status for s in streams] == [200, 200]
    refused = await client.get("/events", headers=bearer(READ_TOKEN))
    error = await assert_error(refused, 429, "feed_token_full")
    assert "2 open streams" in error["message"]
    ws = await client.ws_connect(f"/stream?access_token={READ_TOKEN}")
    assert (await ws_closed(ws))[0] == WSCloseCode.TRY_AGAIN_LATER
    admin = await client.get("/events", headers=bearer(ADMIN_TOKEN))
    assert admin.status == 200
    admin.close()
    streams[0].close()
    for _ in range(100):  # the server notices the closed stream shortly
        again = await client.get("/events", headers=bearer(READ_TOKEN))
        if again.status == 200:
            again.close()
            break
        again.release()
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the closed stream's place was never freed")
    streams[1].close()
