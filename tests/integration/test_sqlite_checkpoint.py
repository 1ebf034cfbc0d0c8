"""The WAL is moved into the database file in the background (relay/store/
sqlite_checkpoint.py), never by a commit that then holds every write behind it."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from relay.store.sqlite.sql import WAL_SIZE_LIMIT
from relay.store.sqlite.store import SqliteStore
from relay.store.sqlite.sync import wal_path
from tests.delivery_support import eventually
from tests.support import T0, make_command, make_record


async def test_committed_pages_reach_the_database_file_while_the_store_is_open(
    tmp_path: Path,
) -> None:
    """Well below SQLite's 1,000-page automatic checkpoint, written pages are copied into
    the database file within a second, while the store stays open."""
    db = tmp_path / "relay.db"
    store = SqliteStore(db)
    await store.open()
    try:
        before = db.stat().st_size
        for n in range(40):
            await store.record(make_command(make_record(created_at=T0, version=f"1.{n}")))
        await eventually(lambda: db.stat().st_size > before, timeout=5, what="a checkpoint")
    finally:
        await store.close()


async def test_the_writer_does_not_checkpoint_in_its_commits(tmp_path: Path) -> None:
    """SQLite's own checkpoint-on-commit is off for relay's writer connection."""
    store = SqliteStore(tmp_path / "relay.db")
    await store.open()
    try:
        value = await store.engine.write(
            lambda conn: conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        )
        assert value == 0
    finally:
        await store.close()


async def test_the_wal_starts_over_under_writes_that_never_pause(tmp_path: Path) -> None:
    """Four writers recording back to back for 2 s: the WAL still starts over (its
    header's salt changes each time), so it does not grow for as long as writes come."""
    db = tmp_path / "relay.db"
    store = SqliteStore(db)
    await store.open()
    salts: set[bytes] = set()

    async def writer(k: int) -> None:
        n, deadline = 0, time.monotonic() + 2
        while time.monotonic() < deadline:
            n += 1
            record = make_record(created_at=T0, version=f"{k}.{n}")
            await store.record(make_command(record, forwarders=[f"hook-{i}" for i in range(5)]))
            with wal_path(db).open("rb") as wal:
                salts.add(wal.read(24)[16:24])  # salt-1 and salt-2 of the WAL header

    try:
        await asyncio.gather(*(writer(k) for k in range(4)))
    finally:
        await store.close()
    assert len(salts) >= 2


async def test_the_wal_file_is_cut_back_after_a_burst(tmp_path: Path) -> None:
    """A burst that grows the WAL past 12 MB does not keep that disk space: once it is
    checkpointed, the next commit starts the WAL over at no more than WAL_SIZE_LIMIT."""
    db = tmp_path / "relay.db"
    store = SqliteStore(db)
    await store.open()
    try:

        def burst(conn: sqlite3.Connection) -> None:
            conn.execute("CREATE TABLE ballast (b BLOB)")
            conn.executemany("INSERT INTO ballast VALUES (?)", [(bytes(4096),)] * 3000)

        await store.engine.write(burst)
        assert wal_path(db).stat().st_size > 12 * 1024 * 1024

        async def cut_back() -> bool:
            await store.record(make_command(make_record(created_at=T0, version="2.0")))
            return wal_path(db).stat().st_size <= WAL_SIZE_LIMIT

        await eventually(cut_back, timeout=10, what="the WAL cut back")
    finally:
        await store.close()
