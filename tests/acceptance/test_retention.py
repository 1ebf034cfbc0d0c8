"""`[storage.retention]` end to end: `relay serve` and `relay worker` prune old rows by the
configured policy in the background, keep what pending deliveries need, and stop cleanly."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from datetime import timedelta
from pathlib import Path

from pytest_aiohttp import AiohttpClient
from structlog.testing import capture_logs

from relay.api.keys import FEED, PRUNER, STORE
from relay.app import create_app
from relay.store.retention_base import RetentionPolicy
from relay.store.sqlite.store import SqliteStore
from relay.timeutil import utcnow
from tests.acceptance.api import bearer, create, get_json, post_json
from tests.acceptance.feed_support import SseReader, feed_settings
from tests.acceptance.server import STARTUP_TIMEOUT, clean_env, relay_command, write_config
from tests.delivery_support import eventually
from tests.outbox_contract import completion
from tests.support import TOKENS, make_command, make_record, make_settings

RETENTION = {"attempts": "30d", "deliveries": "90d", "events": "365d", "interval": "1h"}


async def seed(db: Path) -> str:
    """Three deployments of 400 days ago: one delivered to `hook` (its id is returned), one
    with no delivery, one whose delivery to `late` (not configured) is still pending."""
    old = utcnow() - timedelta(days=400)
    store = SqliteStore(db)
    await store.open()
    try:
        done = make_record("api", "v1", created_at=old)
        await store.record(make_command(done, forwarders=["hook"]))
        (claimed,) = await store.claim("hook", 1, utcnow(), utcnow() + timedelta(minutes=1), "t")
        await store.complete(completion(claimed, "delivered", at=old))
        await store.record(make_command(make_record("api", "v2", created_at=old)))
        busy = make_record("api", "v3", created_at=old)
        await store.record(make_command(busy, forwarders=["late"]))
    finally:
        await store.close()
    return done.id


def old_events(db: Path) -> int:
    """How many events of the seeded deployments are left."""
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    finally:
        conn.close()


async def test_serve_prunes_by_the_configured_policy(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    """Old finished deliveries and their events disappear soon after start; a deployment's
    history stays, so does a pending delivery; ingest goes on; shutdown stops the pruner."""
    db = tmp_path / "relay.db"
    done = await seed(db)
    app = create_app(make_settings(db, storage={"retention": RETENTION}))
    path = f"/components/api/deployments/{done}"
    with capture_logs() as logs:
        client = await aiohttp_client(app)

        async def delivery_gone() -> bool:
            found = await get_json(client, path)
            assert found["version"] == "v1"  # the deployment itself stays
            return found["deliveries"] == []

        await eventually(delivery_gone, what="the delivered delivery pruned")
        await eventually(lambda: any(e["event"] == "retention_pruned" for e in logs))
        response = await post_json(client, "/components/api/deployments", {"version": "v9"})
        assert response.status == 201
        assert app[PRUNER].running
        await client.close()
    assert not app[PRUNER].running
    (pruned,) = [e for e in logs if e["event"] == "retention_pruned"]
    assert (pruned["attempts"], pruned["deliveries"], pruned["events"]) == (1, 1, 2)
    assert old_events(db) == 2  # the pending delivery's event and the new one


async def test_relay_worker_prunes_and_stops_cleanly(tmp_path: Path) -> None:
    """`relay worker` runs the same pruner: old rows go, SIGTERM ends it with exit code 0."""
    db = tmp_path / "relay.db"
    await seed(db)
    config = write_config(tmp_path / "relay.toml", db, TOKENS)
    lines = [f'{key} = "{value}"' for key, value in RETENTION.items()]
    with config.open("a", encoding="utf-8") as f:
        f.write("[storage.retention]\n" + "\n".join(lines) + "\n")
    err = tmp_path / "worker.stderr"
    with err.open("w") as stderr:
        worker = subprocess.Popen(
            [*relay_command(), "worker", "--config", str(config)],
            cwd=tmp_path,
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while "retention_pruned" not in err.read_text(encoding="utf-8"):
            assert worker.poll() is None, err.read_text(encoding="utf-8")
            assert time.monotonic() < deadline, "the worker pruned nothing"
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=STARTUP_TIMEOUT) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert old_events(db) == 1  # the one whose delivery is still pending


async def test_an_sse_client_resuming_from_a_pruned_id_gets_what_remains(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    """`Last-Event-ID` of a frame whose rows were pruned still resumes: the remaining rows
    (none here), then live frames with ids that continue the old ones."""
    client = await aiohttp_client(create_app(feed_settings(tmp_path / "relay.db")))
    app = client.server.app
    watcher = SseReader(await client.get("/events", headers=bearer()))
    await eventually(lambda: len(app[FEED].live) == 1)
    for version in ("1", "2", "3"):
        await create(client, "api", {"version": version})
    seen, *_ = await watcher.frames(3)
    pruned = await app[STORE].prune(
        RetentionPolicy(events=timedelta(0)), utcnow() + timedelta(hours=1), 100
    )
    assert pruned.events == 3
    response = await client.get("/events", headers={**bearer(), "Last-Event-ID": seen.id or ""})
    assert response.status == 200, await response.text()
    back = SseReader(response)
    await eventually(lambda: len(app[FEED].live) == 2)
    later = await create(client, "api", {"version": "4"})
    (live,) = await back.frames(1)
    assert (live.data["deployment"]["id"], live.id) == (later, "4-0-0")
    assert live == (await watcher.frames(1))[0]
