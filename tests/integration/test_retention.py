"""Retention on a real SQLite file behind real HTTP: pruning a large backlog of old rows
(relay/records/retention.py) never holds ingest up."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from datetime import timedelta
from pathlib import Path

from pytest_aiohttp import AiohttpClient

from relay.api.keys import STORE
from relay.app import create_app
from relay.records.retention import Pruner
from relay.store.retention_base import PruneResult, RetentionPolicy
from relay.store.sqlite.compact import id_key, micros
from relay.store.sqlite.store import SqliteStore
from relay.timeutil import format_db, utcnow
from tests.acceptance.api import post_json
from tests.delivery_support import eventually
from tests.support import make_settings

OLD_DEPLOYMENTS = 20_000  # each with one event, one delivered delivery, two attempts
POLICY = RetentionPolicy(
    attempts=timedelta(days=30),
    deliveries=timedelta(days=90),
    events=timedelta(days=365),
)
# The slowest POST took 80-90 ms while batches of 500 were pruned, and ~0.9 s when one
# transaction pruned the whole backlog: between the two, with room for the machine's
# own stalls (one of 0.23 s was seen).
MAX_LATENCY = 0.4


def _seed(conn: sqlite3.Connection) -> None:
    """Write OLD_DEPLOYMENTS deployments of 400 days ago with their finished outbox rows."""
    at = utcnow() - timedelta(days=400)
    old, old_us = format_db(at), micros(at)
    conn.execute("INSERT INTO components (slug, created_at) VALUES ('old', ?)", (old,))
    deployments, events, deliveries, attempts = [], [], [], []
    for i in range(OLD_DEPLOYMENTS):
        dep, event, delivery = (str(uuid.uuid4()) for _ in range(3))
        deployments.append((i + 1, dep, f"v{i}", old, old, old))
        events.append((i + 1, id_key(event), i + 1, old_us))
        deliveries.append((i + 1, id_key(delivery), i + 1, i + 1) + (old_us,) * 4)
        attempts += [(i + 1, n, old) for n in (1, 2)]
    conn.executemany(
        "INSERT INTO deployments (seq, id, kind, component, version, status, created_at,"
        " updated_at, occurred_at) VALUES (?, ?, 'deployment', 'old', ?, 'success', ?, ?, ?)",
        deployments,
    )
    conn.executemany(
        "INSERT INTO events (seq, id, type, deployment_seq, component, created_at, payload)"
        " VALUES (?, ?, 'deployment.created', ?, 'old', ?, '{}')",
        events,
    )
    conn.executemany(
        "INSERT INTO deliveries (seq, id, event_seq, deployment_seq, forwarder, status,"
        " attempts, next_attempt_at, created_at, updated_at, delivered_at)"
        " VALUES (?, ?, ?, ?, 'hook', 'delivered', 2, ?, ?, ?, ?)",
        deliveries,
    )
    conn.executemany(
        "INSERT INTO attempts (delivery_seq, number, started_at, duration_ms, outcome)"
        " VALUES (?, ?, ?, 12.5, 'delivered')",
        attempts,
    )


async def test_ingest_is_answered_promptly_while_a_large_backlog_is_pruned(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    """While 80,000 old rows are pruned in batches, POSTs keep getting their 201 within
    MAX_LATENCY each, and everything old is gone at the end."""
    db = tmp_path / "relay.db"
    seeding = SqliteStore(db)
    await seeding.open()
    await seeding.engine.write(_seed)
    await seeding.close()
    client = await aiohttp_client(create_app(make_settings(db)))
    latencies: list[float] = []
    pruning = asyncio.Event()
    during: list[float] = []

    async def ingest(worker: int) -> None:
        n = 0
        while not done.is_set():
            n += 1
            started = time.monotonic()
            response = await post_json(
                client, "/components/api/deployments", {"version": f"{worker}.{n}"}
            )
            took = time.monotonic() - started
            assert response.status == 201
            latencies.append(took)
            if pruning.is_set() and not done.is_set():
                during.append(took)

    done = asyncio.Event()
    workers = [asyncio.create_task(ingest(w)) for w in range(4)]
    try:
        await eventually(lambda: len(latencies) >= 8, what="ingest running")
        pruner = Pruner(client.app[STORE], POLICY, batch_size=500)
        pruning.set()
        async with asyncio.timeout(60):
            total = await pruner.prune_all()
    finally:
        done.set()
        await asyncio.gather(*workers)
    assert total == PruneResult(attempts=40_000, deliveries=20_000, events=20_000)
    assert len(during) >= 20, f"only {len(during)} POSTs overlapped the prune"
    assert max(latencies) < MAX_LATENCY, f"slowest POST took {max(latencies):.3f}s"
    conn = sqlite3.connect(db)
    try:
        left = conn.execute("SELECT COUNT(*) FROM events WHERE component = 'old'").fetchone()
        assert left == (0,)
    finally:
        conn.close()
