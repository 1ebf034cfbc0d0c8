"""Running several `relay serve` processes on one PostgreSQL database, for the acceptance
tests of relay/store/postgres*.py: config files, the processes, HTTP helpers, a TCP
proxy (a database that comes up later) and a target that never answers (a hung send)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.delivery_support import SECRET, eventually, free_port
from tests.support import CI_TOKEN

ROOT = Path(__file__).resolve().parents[2]
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


@dataclass
class Instance:
    """One `relay serve` subprocess with its output in a log file."""

    config: Path
    log: Path
    dispatch: bool = True
    port: int = field(default_factory=free_port)
    proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """Where it serves."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self, http: aiohttp.ClientSession, *, ready: bool = True) -> Instance:
        """Start serving; wait until /readyz (or only /healthz) answers 200."""
        args = ["serve", "--config", str(self.config), "--port", str(self.port)]
        if not self.dispatch:
            args.append("--no-dispatch")
        env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "relay.cli",
                *args,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                cwd=ROOT,
                env={**env, "PYTHONPATH": str(ROOT)},
            )
        path = "/readyz" if ready else "/healthz"

        async def answers() -> bool:
            assert self.proc is not None and self.proc.returncode is None, self.output()
            try:
                async with http.get(self.url + path) as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(answers, timeout=30, what=f"relay serve answers {path}")
        return self

    async def kill(self) -> None:
        """SIGKILL (`kill -9`): no shutdown code runs."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                async with asyncio.timeout(15):
                    await self.proc.wait()
            except TimeoutError:
                await self.kill()

    def output(self) -> str:
        """What the process printed (for failure messages)."""
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def log_events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log lines with `"event": name`."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{") and f'"{name}"' in line:
                entry = json.loads(line)
                if entry.get("event") == name:
                    found.append(entry)
        return found


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
