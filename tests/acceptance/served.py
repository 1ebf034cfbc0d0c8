"""A whole relay served in-process the way `relay serve` serves it (RelayRunner, with the
connection handler's limits and timeouts), for aiohttp's test client."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.web_runner import BaseRunner

from relay.api.protocol import RelayRunner, handler_args
from relay.app import create_app
from relay.settings import Settings
from tests.support import make_settings


class RelayTestServer(TestServer):
    """aiohttp's TestServer on relay's own runner."""

    def __init__(self, app: web.Application, settings: Settings) -> None:
        super().__init__(app)
        self.settings = settings

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return RelayRunner(self.app, header_timeout=self.settings.server.header_timeout, **kwargs)


async def serve(settings: Settings) -> RelayTestServer:
    """A started test server for a relay with `settings`."""
    server = RelayTestServer(create_app(settings), settings)
    # TestServer drops its constructor's extra arguments: the handler's go to start_server.
    await server.start_server(**handler_args(settings))
    return server


class ThreadedRelay:
    """A relay (no dispatch) served as `relay serve` serves it, by its own event loop in a
    thread: for clients that block, such as schemathesis and requests."""

    def __init__(self, db: Path, **runner: Any) -> None:
        self.loop = asyncio.new_event_loop()
        settings = make_settings(db)
        self.runner = RelayRunner(
            create_app(settings, dispatch=False),
            header_timeout=settings.server.header_timeout,
            **runner,
            **handler_args(settings),
        )
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> str:
        """Serve on a free loopback port; the base URL."""
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.runner.setup(), self.loop).result(30)
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        asyncio.run_coroutine_threadsafe(site.start(), self.loop).result(30)
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    def stop(self) -> None:
        """Stop serving and close the loop."""
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
