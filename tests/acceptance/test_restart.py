"""Durability of the real server: acknowledged events survive `kill -9` and a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.acceptance.server import RelayServer, write_config
from tests.support import CI_TOKEN, TOKENS

pytestmark = pytest.mark.slow


def test_acknowledged_events_survive_kill_9(tmp_path: Path) -> None:
    """Every deployment answered 201 before a `kill -9` is listed after restarting."""
    db = tmp_path / "data" / "relay.db"
    config = write_config(tmp_path / "relay.toml", db, TOKENS)
    server = RelayServer(config, tmp_path).start()
    acknowledged: dict[str, str] = {}
    try:
        for i in range(30):
            answer = server.request(
                "POST",
                "/components/api/deployments",
                {"version": f"v{i}", "stage": "production", "meta_data": {"n": i}},
                CI_TOKEN,
            )
            assert answer.status == 201, answer.body
            acknowledged[answer.body["id"]] = f"v{i}"
    finally:
        server.kill()
    assert server.process is not None and server.process.returncode == -9

    with RelayServer(config, tmp_path, port=server.port) as restarted:
        assert restarted.request("GET", "/readyz").status == 200
        listing = restarted.request("GET", "/components/api/deployments?limit=500", token=CI_TOKEN)
        assert listing.status == 200
        assert {d["id"]: d["version"] for d in listing.body} == acknowledged
        # Newest first, as before the crash.
        assert [d["version"] for d in listing.body] == [f"v{i}" for i in reversed(range(30))]
        # The restarted server records more on the same file.
        more = restarted.request(
            "POST", "/components/api/deployments", {"version": "v30"}, CI_TOKEN
        )
        assert more.status == 201


def test_graceful_stop_keeps_everything_too(tmp_path: Path) -> None:
    """After SIGTERM the server exits cleanly and a restart lists what was recorded."""
    db = tmp_path / "relay.db"
    config = write_config(tmp_path / "relay.toml", db, TOKENS)
    server = RelayServer(config, tmp_path).start()
    answer = server.request("POST", "/components/api/deployments", {"version": "v1"}, CI_TOKEN)
    assert answer.status == 201
    server.stop()
    assert server.process is not None and server.process.returncode == 0
    with RelayServer(config, tmp_path) as restarted:
        listing = restarted.request("GET", "/components/api/deployments", token=CI_TOKEN)
        assert [d["id"] for d in listing.body] == [answer.body["id"]]
