"""Running several `relay serve` processes on one PostgreSQL database, for the acceptance
tests of relay/store/postgres*.py: config files, HTTP helpers, a TCP proxy (a database
that comes up later) and a target that never answers (a hung send). The processes
themselves are tests/acceptance/instance.py's Instance."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.delivery_support import SECRET
from tests.support import CI_TOKEN

HEADERS = {"Authorization": f"Bearer {CI_TOKEN}"}


def write_config(
    path: Path,
    url: str,
    targets: dict[str, str],
    *,
    timeout: str = "2s",
    **delivery: str,
) -> Path:
    """A relay.toml on the PostgreSQL `url` with one webhook forwarder per name → URL."""
    settings = {"shutdown_grace": "1s", **delivery}
    lines = [
        "[server]",
        'host = "127.0.0.1"',
        "[storage]",
        f"url = {json.dumps(url)}",
        "pool_max = 4",
        "[logging]",
        'format = "json"',
        'level = "debug"',  # delivery_succeeded tells which instance sent what
        "[security]",
        'allow_networks = ["127.0.0.0/8"]',
        "[delivery]",
        *(f"{key} = {json.dumps(value)}" for key, value in settings.items()),
        "[[tokens]]",
        'name = "ci"',
        f"token = {json.dumps(CI_TOKEN)}",
    ]
    for name, target in targets.items():
        lines += [
            "[[forwarders]]",
            f"name = {json.dumps(name)}",
            'type = "webhook"',
            f"url = {json.dumps(target)}",
            f"secret = {json.dumps(SECRET)}",
            f"timeout = {json.dumps(timeout)}",
            'retry = { schedule = ["0.2s", "0.2s", "0.5s", "1s", "1s"], jitter = 0 }',
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def call(
    http: aiohttp.ClientSession, method: str, url: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    """One authenticated JSON request; (status, parsed body)."""
    async with http.request(method, url, json=body, headers=HEADERS) as response:
        return response.status, await response.json()


class TcpProxy:
    """Forwards a loopback port to another (the database "comes up" when it starts)."""

    def __init__(self, port: int, target: int) -> None:
        self.port, self.target = port, target
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen on `port`."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        """Stop listening and cut every connection."""
        if self._server is not None:
            self._server.close()
        for task in self._pipes:
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(_pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


class BlackHole:
    """An HTTP target that accepts requests and never answers (a send that hangs)."""

    def __init__(self) -> None:
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._held: list[asyncio.StreamWriter] = []
        self.url = ""

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        """Drop every connection and stop listening."""
        for writer in self._held:
            writer.close()
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._held.append(writer)
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                self.requests += 1  # read the headers, answer nothing
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the sender went away (killed, or timed out)


def elapsed_since(start: float) -> float:
    """Seconds since the monotonic time `start`."""
    return time.monotonic() - start
