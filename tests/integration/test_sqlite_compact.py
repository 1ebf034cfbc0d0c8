"""The compact outbox of SQLite (migration 0010, relay/store/sqlite/compact.py) on a real file:
what a waiting delivery costs on disk, and a database of the older layout carried over."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

from relay.store.base import DeliveryQuery
from relay.store.leases import new_owner
from relay.store.sqlite import compact
from relay.store.sqlite import sql as sql
from relay.store.sqlite.engine import _statements, known_migrations
from relay.store.sqlite.store import SqliteStore
from relay.timeutil import format_db
from tests.support import T0, make_command, make_record, minutes

FORWARDERS = ("a", "b", "c", "d", "e")
# Bytes per waiting delivery, rows and indexes: the outbox's own took 434 and the whole
# database 757 (events and deployments included) before migration 0010 and payload
# format 1; now about 155 and 360.
MAX_OUTBOX_BYTES = 200
MAX_DATABASE_BYTES = 400
OUTBOX_BYTES = """
SELECT SUM(s.pgsize) FROM dbstat s JOIN sqlite_schema m ON m.name = s.name
WHERE m.tbl_name = 'deliveries'
"""


def _bytes_per_delivery(db: Path) -> tuple[float, float]:
    conn = sqlite3.connect(db)
    try:
        count = conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
        outbox = conn.execute(OUTBOX_BYTES).fetchone()[0]
        everything = conn.execute("SELECT SUM(pgsize) FROM dbstat").fetchone()[0]
        return outbox / count, everything / count
    finally:
        conn.close()


async def test_a_waiting_delivery_costs_few_bytes(tmp_path: Path) -> None:
    """Deliveries waiting for a target that is down (five per deployment) take under
    MAX_OUTBOX_BYTES each, indexes included, and the whole database under
    MAX_DATABASE_BYTES per delivery, so that a long outage does not fill the disk."""
    db = tmp_path / "relay.db"
    store = SqliteStore(db)
    await store.open()
    try:
        for i in range(1_000):
            record = make_record("api", f"v{i}", stage="prod", finished_at=T0 + minutes(i))
            await store.record(make_command(record, forwarders=FORWARDERS))
    finally:
        await store.close()
    outbox, everything = _bytes_per_delivery(db)
    assert outbox < MAX_OUTBOX_BYTES
    assert everything < MAX_DATABASE_BYTES


DEPLOYMENT = str(uuid.uuid4())
EVENT = str(uuid.uuid4())
UUID_DELIVERY = str(uuid.uuid4())
OWN_DELIVERY = "delivery-made-by-hand"
CREATED, ATTEMPTED = T0, T0 + minutes(1)


def _old_database(db: Path) -> None:
    """A database as relay wrote it before migration 0010: one deployment whose event has
    a delivered delivery (two attempts) and a waiting one with a text id of its own."""
    conn = sqlite3.connect(db, isolation_level=None)
    compact.register_migration(conn)
    conn.execute(sql.CREATE_MIGRATIONS_TABLE)
    for version, name, script in known_migrations():
        if version >= 10:
            break
        for statement in _statements(script):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (version, name, format_db(T0)),
        )
    at, tried = format_db(CREATED), format_db(ATTEMPTED)
    conn.execute("INSERT INTO components (slug, created_at) VALUES ('api', ?)", (at,))
    conn.execute(
        "INSERT INTO deployments (id, kind, component, version, status, created_at,"
        " updated_at, occurred_at) VALUES (?, 'deployment', 'api', 'v1', 'success', ?, ?, ?)",
        (DEPLOYMENT, at, at, at),
    )
    conn.execute(
        "INSERT INTO events (id, type, deployment_id, component, created_at, payload)"
        " VALUES (?, 'deployment.created', ?, 'api', ?, '{\"version\": \"v1\"}')",
        (EVENT, DEPLOYMENT, at),
    )
    conn.executemany(
        "INSERT INTO deliveries (id, event_id, event_seq, deployment_id, forwarder, status,"
        " attempts, next_attempt_at, state, last_error, created_at, updated_at, delivered_at)"
        " VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                UUID_DELIVERY,
                EVENT,
                DEPLOYMENT,
                "a",
                "delivered",
                2,
                tried,
                '{"n": 1}',
                None,
                at,
                tried,
                tried,
            ),
            (
                OWN_DELIVERY,
                EVENT,
                DEPLOYMENT,
                "b",
                "pending",
                1,
                tried,
                "{}",
                "HTTP 503",
                at,
                tried,
                None,
            ),
        ],
    )
    conn.executemany(
        "INSERT INTO attempts (id, delivery_id, number, started_at, duration_ms, outcome)"
        " VALUES (?, ?, ?, ?, 12.5, ?)",
        [
            (7, UUID_DELIVERY, 1, at, "retry"),
            (8, UUID_DELIVERY, 2, tried, "delivered"),
            (9, OWN_DELIVERY, 1, tried, "retry"),
        ],
    )
    # A pruned attempt and a pruned event once had the highest ids: neither may be given
    # again (the live feed's cursors).
    conn.execute("UPDATE sqlite_sequence SET seq = 20 WHERE name = 'attempts'")
    conn.execute("UPDATE sqlite_sequence SET seq = 30 WHERE name = 'events'")
    conn.close()


async def test_an_older_database_keeps_its_deliveries_through_the_migration(
    tmp_path: Path,
) -> None:
    """Opening a database of the older layout converts it: every delivery and event keeps
    its id, times, state, attempts and deployment, the waiting delivery is still claimed,
    and new attempt and event ids carry on after the highest ever given."""
    db = tmp_path / "relay.db"
    _old_database(db)
    store = SqliteStore(db)
    await store.open()
    try:
        found = await store.list_deliveries(DeliveryQuery(deployment_id=DEPLOYMENT))
        assert [(d.id, d.forwarder, d.status) for d in found] == [
            (UUID_DELIVERY, "a", "delivered"),
            (OWN_DELIVERY, "b", "pending"),
        ]
        done, waiting = found
        assert (done.created_at, done.updated_at, done.delivered_at) == (
            CREATED,
            ATTEMPTED,
            ATTEMPTED,
        )
        assert [a.number for a in done.attempt_log or []] == [1, 2]
        assert waiting.next_attempt_at == ATTEMPTED and waiting.last_error == "HTTP 503"

        [claim] = await store.claim("b", 10, ATTEMPTED, ATTEMPTED + minutes(1), new_owner())
        assert (claim.id, claim.deployment_id, claim.event_id) == (OWN_DELIVERY, DEPLOYMENT, EVENT)
        assert (claim.state, claim.payload) == ({}, {"version": "v1"})
        assert await store.claim("a", 10, ATTEMPTED, ATTEMPTED, new_owner()) == []
        [event] = await store.events_between(CREATED, ATTEMPTED)
        assert (event.id, event.deployment_id, event.created_at) == (EVENT, DEPLOYMENT, CREATED)
        await store.record(make_command(make_record("api", "v2")))
    finally:
        await store.close()
    conn = sqlite3.connect(db)
    try:
        conn.execute(
            "INSERT INTO attempts (delivery_seq, number, started_at, duration_ms, outcome)"
            " VALUES (2, 2, ?, 1.0, 'retry')",
            (format_db(ATTEMPTED),),
        )
        assert conn.execute("SELECT MAX(id) FROM attempts").fetchone() == (21,)
        assert conn.execute("SELECT MAX(seq) FROM events").fetchone() == (31,)
    finally:
        conn.close()
