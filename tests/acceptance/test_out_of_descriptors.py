"""A relay out of file descriptors (a fleet's connections) still records events."""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.acceptance.server import RelayServer, write_config

TOKEN = "fd-token-abcdefghijklmnopqrstuvwxyz"
SOFT_LIMIT = 128  # descriptors of the relay process
IDLE_CONNECTIONS = 300  # more than it can hold
CLIENTS = 20  # connections opened before, each posting an event

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="descriptor limits as Linux applies them"
)


@contextmanager
def _relay(tmp_path: Path) -> Iterator[int]:
    """`relay serve` with a soft limit of SOFT_LIMIT descriptors; yields its port."""
    tokens = [{"name": "ci", "token": TOKEN, "scopes": ["events:write", "events:read"]}]
    config = write_config(tmp_path / "relay.toml", tmp_path / "relay.db", tokens)
    server = RelayServer(config, tmp_path, nofile=SOFT_LIMIT).start()
    try:
        yield server.port
    finally:
        server.stop()


def _request(component: str, version: str) -> bytes:
    data = json.dumps({"version": version}).encode()
    head = (
        f"POST /components/{component}/deployments HTTP/1.1\r\nHost: relay\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def _answer(conn: socket.socket) -> tuple[int, dict[str, str]]:
    """The status and JSON body of the next answer on a keep-alive connection."""
    reader = conn.makefile("rb")
    status = int(reader.readline().split()[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return status, json.loads(reader.read(length))


def test_events_are_recorded_while_relay_has_no_descriptor_left(tmp_path: Path) -> None:
    """With every descriptor taken by idle connections, POSTs on open ones get 201."""
    with _relay(tmp_path) as port, ExitStack() as stack:
        clients = [
            stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
            for _ in range(CLIENTS)
        ]
        for conn in clients:  # accepted, and relay warmed up
            conn.sendall(_request("warm-up", "0.0.1"))
            assert _answer(conn)[0] == 201
        for _ in range(IDLE_CONNECTIONS):
            try:
                stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=1))
            except OSError:
                break  # the rest wait in the listen queue or were turned away
        time.sleep(0.5)  # relay has accepted what it can
        for i, conn in enumerate(clients):  # at once: written in one group commit
            conn.sendall(_request(f"host-{i}", "1.0.1"))
        answers = [_answer(conn) for conn in clients]
        assert [status for status, _ in answers] == [201] * CLIENTS, answers
