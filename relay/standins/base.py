"""What every mock receiver shares: recording, canned faults, start/stop on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class Fault:
    """A canned answer given instead of the real handling (for fault tests)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Rejected(Exception):
    """Raised by a receiver's validation: answered with `status` and `body`."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body


class Receiver:
    """Base of the mock receivers: subclasses add routes in `routes()`."""

    name = "receiver"

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.faults: list[Fault] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    @property
    def accepted(self) -> list[Received]:
        """Requests answered with a 2xx."""
        return [r for r in self.received if 200 <= r.status < 300]

    @property
    def rejected(self) -> list[Received]:
        """Requests answered with anything else."""
        return [r for r in self.received if not 200 <= r.status < 300]

    def routes(self) -> list[web.RouteDef]:
        """The receiver's routes; each handler returns (status, json body)."""
        raise NotImplementedError

    def wrap(self, handler: Callable[[web.Request, bytes], Awaitable[tuple[int, Any]]]) -> Handler:
        """Turn a validating handler into an aiohttp one that records and injects faults."""

        async def run(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            headers = dict(request.headers)
            if self.faults:
                fault = self.faults.pop(0)
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                self._record(request, headers, body, fault.status)
                return web.json_response(fault.body, status=fault.status, headers=fault.headers)
            try:
                status, payload = await handler(request, body)
            except Rejected as exc:
                status, payload = exc.status, exc.body
            self._record(request, headers, body, status)
            return web.json_response(payload, status=status)

        return run

    def _record(
        self, request: web.Request, headers: dict[str, str], body: bytes, status: int
    ) -> None:
        self.received.append(Received(request.method, request.path_qs, headers, body, status))

    def app(self) -> web.Application:
        """The aiohttp application of this receiver."""
        app = web.Application()
        app.add_routes(self.routes())
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on loopback; returns the base URL."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.url = f"http://{host}:{bound}"
        return self.url

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def parse_json(body: bytes, error: Any = None) -> Any:
    """The JSON of a request body, or Rejected(400) with the target's `error` body
    (Grafana's by default)."""
    try:
        return json.loads(body)
    except ValueError:
        raise Rejected(400, error or {"message": "bad request data"}) from None


def require_bearer(request: web.Request, expected: str | None) -> None:
    """Rejected(401) unless `Authorization: Bearer <expected>` (any token if None)."""
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer ") or (expected is not None and auth[7:] != expected):
        raise Rejected(401, {"message": "Unauthorized"})
