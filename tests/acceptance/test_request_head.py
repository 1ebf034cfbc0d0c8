"""What aiohttp's parser refuses is answered as relay's JSON error quoting nothing of the
request, and slow or idle connections are closed (served as `relay serve` serves)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from relay.settings import ServerSettings
from tests.acceptance.served import RelayTestServer, serve
from tests.support import CI_TOKEN, make_settings

PATH = b"/components/api/deployments"
TOKEN = CI_TOKEN.encode()
LONG = b"A" * 9000

# name -> (raw request, status, code)
MALFORMED: dict[str, tuple[bytes, int, str]] = {
    "long_request_line": (
        b"GET "
        + PATH
        + b"?access_token="
        + TOKEN
        + b"&x="
        + LONG
        + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        400,
        "request_head_too_large",
    ),
    "long_header": (
        b"GET "
        + PATH
        + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + TOKEN
        + LONG
        + b"\r\n\r\n",
        400,
        "request_head_too_large",
    ),
    "invalid_method": (
        b"G\x01T " + PATH + b"?access_token=" + TOKEN + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        400,
        "malformed_request",
    ),
    "content_length_with_chunked": (
        b"POST " + PATH + b"?access_token=" + TOKEN + b" HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        "malformed_request",
    ),
    "bad_chunk_size": (
        b"POST " + PATH + b"?access_token=" + TOKEN + b" HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + TOKEN
        + b"\r\n{}\r\n0\r\n\r\n",
        400,
        "malformed_request",
    ),
    "brotli_body": (
        b"POST " + PATH + b"?access_token=" + TOKEN + b" HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n{}",
        415,
        "unsupported_content_encoding",
    ),
}


async def exchange(port: int, data: bytes, *, wait: float = 5.0) -> bytes:
    """Send raw bytes, read one answer (head and Content-Length body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        async with asyncio.timeout(wait):
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            return head + await reader.readexactly(length)
    finally:
        writer.close()


def split(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a raw HTTP/1.1 answer."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.fixture
async def make_relay(db_path: Path) -> AsyncIterator[Callable[..., Awaitable[RelayTestServer]]]:
    """Start a relay served through RelayRunner with the given `[server]` timeouts."""
    servers: list[RelayTestServer] = []

    async def start(**server: float) -> RelayTestServer:
        settings = make_settings(db_path)
        settings.server = ServerSettings(**server)
        servers.append(await serve(settings))
        return servers[-1]

    yield start
    for started in servers:
        await started.close()


@pytest.fixture
async def relay(make_relay: Callable[..., Awaitable[RelayTestServer]]) -> RelayTestServer:
    """A relay with a short body timeout (the others long)."""
    return await make_relay(header_timeout=30, body_timeout=0.3, idle_timeout=30)


@pytest.mark.parametrize("name", list(MALFORMED))
async def test_what_the_parser_refuses_is_a_json_error_quoting_nothing(
    relay: RelayTestServer, name: str
) -> None:
    """Each malformed request gets relay's JSON error, never the token or the bytes sent."""
    data, status, code = MALFORMED[name]
    assert relay.port is not None
    got, headers, body = split(await exchange(relay.port, data))
    assert got == status, body
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"]["code"] == code
    assert TOKEN not in body and b"AAAA" not in body
    assert headers["x-request-id"]


async def test_a_slowly_sent_head_is_cut_off(
    make_relay: Callable[..., Awaitable[RelayTestServer]],
) -> None:
    """A request head still incomplete after `server.header_timeout` closes the connection,
    long before the idle timeout."""
    relay = await make_relay(header_timeout=0.3, idle_timeout=30)
    assert relay.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    started = asyncio.get_running_loop().time()
    async with asyncio.timeout(5):
        rest = await reader.read()
    writer.close()
    assert rest == b""
    assert asyncio.get_running_loop().time() - started >= 0.25


async def test_an_idle_keep_alive_connection_is_closed(
    make_relay: Callable[..., Awaitable[RelayTestServer]],
) -> None:
    """After an answer, a connection idle for `server.idle_timeout` is closed."""
    relay = await make_relay(header_timeout=30, idle_timeout=0.5)
    assert relay.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    started = asyncio.get_running_loop().time()
    async with asyncio.timeout(5):
        answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200")
    assert asyncio.get_running_loop().time() - started >= 0.4


async def test_a_slowly_sent_body_is_a_408(relay: RelayTestServer) -> None:
    """A body still incomplete after `server.body_timeout` is answered 408 and closed."""
    assert relay.port is not None
    head = (
        b"POST " + PATH + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN + b"\r\n"
        b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"version"'
    )
    got, headers, body = split(await exchange(relay.port, head))
    assert got == 408, body
    assert json.loads(body)["error"]["code"] == "request_timeout"
    assert headers.get("connection", "").lower() == "close"


async def test_a_slow_body_answered_408_is_not_read_on(relay: RelayTestServer) -> None:
    """After the 408 the connection closes at once: the rest of the slow body is not waited
    for (aiohttp would otherwise keep reading it for its 10 s lingering time)."""
    assert relay.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
    writer.write(
        b"POST " + PATH + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN + b"\r\n"
        b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"version"'
    )
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(5):
            head = await reader.readuntil(b"\r\n\r\n")
            answered = loop.time()
            assert head.startswith(b"HTTP/1.1 408")
            while await reader.read(4096):  # until the server closes
                writer.write(b" ")  # the client keeps trickling its body
        assert loop.time() - answered < 2
    finally:
        writer.close()
