"""A whole relay served in-process the way `relay serve` serves it (RelayRunner, with the
connection handler's limits and timeouts), for aiohttp's test client."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.web_runner import BaseRunner

from relay.api.protocol import RelayRunner, handler_args
from relay.app import create_app
from relay.settings import Settings


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
