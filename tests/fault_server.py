"""A raw TCP HTTP server that misbehaves on purpose, one scripted fault per request.

aiohttp's test server is too polite for some faults (a reset in the middle of an
answer, a byte a second, 50 MB nobody should read), so this speaks HTTP/1.1 by hand.
Each request takes the next behaviour from `script`; when it is empty the answer is a
plain 200. `sent_bytes` says how much of each answer actually left the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass, field

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


@dataclass
class FaultServer:
    """Serves on 127.0.0.1; `script` holds behaviour names (see `_answer`)."""

    script: list[str] = field(default_factory=list)
    requests: int = 0
    sent_bytes: list[int] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        """The URL to configure as the forwarder's `url`."""
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> FaultServer:
        """Listen on an ephemeral loopback port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Close the listener and every connection still held."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while await _read_request(reader):
                self.requests += 1
                behaviour = self.script.pop(0) if self.script else "ok"
                if not await self._answer(behaviour, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _answer(self, behaviour: str, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must end."""
        name, _, arg = behaviour.partition(":")
        if name == "ok":
            return await self._send(writer, OK)
        if name == "status":  # "status:429:Retry-After: 2"
            code, _, header = arg.partition(":")
            extra = f"{header.strip()}\r\n" if header else ""
            head = f"HTTP/1.1 {code} Fault\r\n{extra}Content-Length: 2\r\n\r\n{{}}"
            return await self._send(writer, head.encode())
        if name == "reset":  # half a status line, then a TCP RST
            await self._send(writer, b"HTTP/1.1 200 O")
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if name == "hang":
            await asyncio.Event().wait()  # until stop() cancels it
        if name == "drip":  # the whole answer, one byte a second
            for byte in OK:
                await self._send(writer, bytes([byte]))
                await asyncio.sleep(1.0)
            return True
        if name == "huge":  # 50 MB announced and pushed as fast as the reader takes it
            total = 50 * 1024 * 1024
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n".encode()
            sent = 0
            with contextlib.suppress(ConnectionError):
                writer.write(head)
                chunk = b"x" * 65536
                while sent < total:
                    writer.write(chunk)
                    await writer.drain()
                    sent += len(chunk)
            self.sent_bytes.append(sent)
            return False
        if name == "redirect":  # "redirect:http://elsewhere/"
            head = (
                f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {arg}\r\nContent-Length: 0\r\n\r\n"
            )
            return await self._send(writer, head.encode())
        raise AssertionError(f"unknown behaviour {behaviour!r}")

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> bool:
        writer.write(data)
        await writer.drain()
        return True


async def _read_request(reader: asyncio.StreamReader) -> bool:
    """Read one request (head and Content-Length body); False at end of stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return False
    length = 0
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return True
