"""`relay serve` logs what its HTTP parser refuses as redacted JSON lines, rate-limited:
no traceback and no token on stderr, whatever clients send."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from relay.api.protocol import REFUSED_LOG_BURST
from tests.acceptance.server import RelayServer, write_config
from tests.acceptance.test_request_head import MALFORMED, TOKEN

pytestmark = pytest.mark.slow


def send(port: int, data: bytes) -> bytes:
    """One raw request; the answer's first bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        return sock.recv(65536)


def test_refused_requests_leave_one_redacted_json_line_each_rate_limited(tmp_path: Path) -> None:
    """Every malformed request is logged as JSON without the token; a flood of them is
    cut to the burst, and the next line says how many were left out."""
    config = write_config(
        tmp_path / "relay.toml",
        tmp_path / "relay.db",
        [{"name": "ci", "token": TOKEN.decode(), "scopes": ["events:write"]}],
    )
    with RelayServer(config, tmp_path) as relay:
        for data, _, _ in MALFORMED.values():
            assert send(relay.port, data).split(b" ", 2)[1].startswith(b"4")
        flood = MALFORMED["invalid_method"][0]
        for _ in range(3 * REFUSED_LOG_BURST):
            send(relay.port, flood)
        time.sleep(0.5)  # the bucket refills: the next line is written
        send(relay.port, flood)
        relay.stop()
    output = relay.stdout + relay.stderr
    assert "Traceback" not in output
    assert TOKEN.decode() not in output
    lines = [json.loads(line) for line in relay.stderr.splitlines() if line.strip()]
    refused = [line for line in lines if line["event"] == "http_request_refused"]
    assert len(MALFORMED) <= len(refused) <= REFUSED_LOG_BURST + 5
    assert refused[-1]["suppressed"] > 0
    assert {line["error"] for line in refused} >= {"LineTooLong", "BadHttpMethod"}
