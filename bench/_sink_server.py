"""Sinks of the fan-out benchmarks: local targets that answer 200 at once and count.

    python bench/_sink_server.py CONTROL_PORT --ports P1 P2 ... [--hang H1 ...]

One process serves every port (one event loop, so one core at most):

- each `--ports` port answers every request `200` with an empty body as soon as the
  body has arrived, counts it and notes its arrival time (`time.time()`, comparable
  with the client's clock on this machine) and, when the body is a webhook envelope,
  the deployment id in it (`"data":{"id":"…"`);
- each `--hang` port accepts connections, reads what comes and never answers, like a
  target that hangs (the client's timeout ends the request);
- CONTROL_PORT answers `GET /stats` (counts, first and last arrival, the seconds the
  sinks spent handling requests, body bytes), `GET /arrivals` ([port, id, time] per
  request with an id), `GET /sample` (head and body of the first request) and
  `POST /reset`. It starts listening last, so once it answers every sink does.

The sink ports speak just enough HTTP/1.1 for aiohttp's client (Content-Length bodies,
keep-alive) instead of running an aiohttp server: that costs a fraction of the CPU, so
on 2 cores the sink stays out of the way of the client being measured.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiohttp import web

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Type: text/plain\r\n\r\n"
ID_MARKER = b'"data":{"id":"'
ID_LENGTH = 36  # a UUID in its text form
MAX_HEAD = 64 * 1024
HOST = "127.0.0.1"
BACKLOG = 1024  # listen queue: a client opening 40 connections at once must not wait


@dataclass
class Tally:
    """What every sink port has seen since the last reset."""

    counts: dict[int, int] = field(default_factory=dict)
    arrivals: list[tuple[int, str, float]] = field(default_factory=list)
    first: float | None = None
    last: float | None = None
    busy: float = 0.0  # seconds spent in the sinks' handlers (perf_counter)
    body_bytes: int = 0
    hang_connections: int = 0
    sample: dict[str, str] | None = None  # the first request: its head and body
    status: int = 200  # what the sink ports answer (POST /status/CODE)
    refused: int = 0  # answers other than 200 since the last reset

    def reset(self) -> None:
        self.counts = dict.fromkeys(self.counts, 0)
        self.arrivals, self.first, self.last, self.busy = [], None, None, 0.0
        self.body_bytes = self.hang_connections = self.refused = 0
        self.sample = None

    def stats(self) -> dict[str, Any]:
        return {
            "count": sum(self.counts.values()),
            "per_port": {str(p): n for p, n in self.counts.items()},
            "first": self.first,
            "last": self.last,
            "busy": self.busy,
            "body_bytes": self.body_bytes,
            "hang_connections": self.hang_connections,
            "refused": self.refused,
            "status": self.status,
        }


class SinkProtocol(asyncio.Protocol):
    """One keep-alive connection to a sink port: answer each full request with 200."""

    def __init__(self, port: int, tally: Tally) -> None:
        self.port, self.tally = port, tally
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        started = time.perf_counter()
        self.buffer += data
        while self._one_request():
            pass
        self.tally.busy += time.perf_counter() - started

    def _one_request(self) -> bool:
        """Handle the first complete request in the buffer; False when there is none."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                self._close()
            return False
        length = _content_length(self.buffer[:end])
        if length is None:
            self._close()  # chunked or malformed: no client of the benchmarks sends that
            return False
        total = end + 4 + length
        if len(self.buffer) < total:
            return False
        head, body = self.buffer[:end], self.buffer[end + 4 : total]
        self.buffer = self.buffer[total:]
        assert self.transport is not None
        if self.tally.status != 200:
            self.tally.refused += 1
            self.transport.write(_refusal(self.tally.status))
            return True
        if self.tally.sample is None:
            self.tally.sample = {"head": head.decode("latin-1"), "body": body.decode()}
        self._record(body)
        self.transport.write(RESPONSE)
        return True

    def _record(self, body: bytes) -> None:
        now = time.time()
        tally = self.tally
        tally.counts[self.port] += 1
        tally.body_bytes += len(body)
        tally.first = now if tally.first is None else tally.first
        tally.last = now
        at = body.find(ID_MARKER)
        if at >= 0:
            start = at + len(ID_MARKER)
            tally.arrivals.append((self.port, body[start : start + ID_LENGTH].decode(), now))

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class HangProtocol(asyncio.Protocol):
    """A target that accepts, reads and never answers."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.tally.hang_connections += 1

    def data_received(self, data: bytes) -> None:
        pass  # read and dropped, so the client's send never blocks on a full buffer


def _refusal(status: int) -> bytes:
    return f"HTTP/1.1 {status} Refused\r\nContent-Length: 0\r\n\r\n".encode()


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
        if name.strip().lower() == b"transfer-encoding":
            return None
    return 0  # no body (a GET)


def control_app(tally: Tally) -> web.Application:
    async def stats(request: web.Request) -> web.Response:
        return web.json_response(tally.stats())

    async def arrivals(request: web.Request) -> web.Response:
        return web.json_response(tally.arrivals)

    async def sample(request: web.Request) -> web.Response:
        return web.json_response(tally.sample)

    async def reset(request: web.Request) -> web.Response:
        tally.reset()
        return web.json_response({"ok": True})

    async def set_status(request: web.Request) -> web.Response:
        tally.status = int(request.match_info["code"])
        return web.json_response({"status": tally.status})

    app = web.Application()
    app.router.add_post("/status/{code}", set_status)
    app.router.add_get("/stats", stats)
    app.router.add_get("/arrivals", arrivals)
    app.router.add_get("/sample", sample)
    app.router.add_post("/reset", reset)
    return app


async def serve(control: int, ports: list[int], hang: list[int]) -> None:
    loop = asyncio.get_running_loop()
    tally = Tally(counts=dict.fromkeys(ports, 0))
    for port in ports:
        await loop.create_server(partial(SinkProtocol, port, tally), HOST, port, backlog=BACKLOG)
    for port in hang:
        await loop.create_server(partial(HangProtocol, tally), HOST, port, backlog=BACKLOG)
    runner = web.AppRunner(control_app(tally), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, HOST, control).start()
    await asyncio.Event().wait()  # until SIGTERM ends the process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("control", type=int)
    parser.add_argument("--ports", type=int, nargs="+", required=True)
    parser.add_argument("--hang", type=int, nargs="*", default=[])
    args = parser.parse_args()
    asyncio.run(serve(args.control, args.ports, args.hang))


if __name__ == "__main__":
    main()
