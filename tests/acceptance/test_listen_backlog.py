"""A fleet connecting at once: `relay serve` queues `server.backlog` connections."""

from __future__ import annotations

import errno
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.acceptance.server import RelayServer, write_config

HOSTS = 600  # more than the kernel's old default of 128 queued connections
HANDSHAKE_WAIT_S = 0.5  # a SYN the kernel dropped is sent again only after 1 s
SOMAXCONN = Path("/proc/sys/net/core/somaxconn")

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux")
    or not SOMAXCONN.exists()
    or int(SOMAXCONN.read_text()) < HOSTS,
    reason="needs Linux with net.core.somaxconn of at least 600",
)


@contextmanager
def _paused(server: RelayServer) -> Iterator[None]:
    """Stop relay's process so that it accepts nothing: connections wait in its queue."""
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


def _handshakes(port: int, hosts: int) -> int:
    """Connect `hosts` sockets at once; how many finished the TCP handshake in time."""
    socks: list[socket.socket] = []
    done = 0
    with selectors.DefaultSelector() as sel:
        try:
            for _ in range(hosts):
                sock = socket.socket()
                socks.append(sock)
                sock.setblocking(False)
                assert sock.connect_ex(("127.0.0.1", port)) in (0, errno.EINPROGRESS)
                sel.register(sock, selectors.EVENT_WRITE)
            deadline = time.monotonic() + HANDSHAKE_WAIT_S
            while (left := deadline - time.monotonic()) > 0 and done < hosts:
                for key, _ in sel.select(left):
                    sel.unregister(key.fileobj)
                    ready = key.fileobj
                    assert isinstance(ready, socket.socket)
                    if ready.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                        done += 1
        finally:
            for sock in socks:
                sock.close()
    return done


def _server(tmp_path: Path, extra: str = "") -> RelayServer:
    config = write_config(tmp_path / "relay.toml", tmp_path / "relay.db", tokens=[])
    text = config.read_text(encoding="utf-8").replace("[server]\n", f"[server]\n{extra}", 1)
    config.write_text(text, encoding="utf-8")
    return RelayServer(config, tmp_path).start()


def test_a_fleet_connecting_at_once_is_queued_not_dropped(tmp_path: Path) -> None:
    """600 hosts connecting while relay is busy all complete their handshake at once."""
    server = _server(tmp_path)
    try:
        with _paused(server):
            established = _handshakes(server.port, HOSTS)
        assert established == HOSTS
        assert server.request("GET", "/healthz").status == 200
    finally:
        server.stop()


def test_backlog_setting_bounds_the_queue(tmp_path: Path) -> None:
    """`server.backlog = 64` queues about 64 connections; the others wait on TCP retries."""
    server = _server(tmp_path, "backlog = 64\n")
    try:
        with _paused(server):
            established = _handshakes(server.port, HOSTS)
        assert 32 <= established <= 100
    finally:
        server.stop()
