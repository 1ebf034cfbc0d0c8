"""Writers of several processes on one SQLite file take turns on `<file>.lock`
(relay/store/writer_lock.py) instead of polling SQLite's busy lock."""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from pathlib import Path

from relay.store.sqlite.store import SqliteStore
from tests.support import T0, make_command, make_record


async def test_a_write_waits_for_another_writers_turn_then_commits(tmp_path: Path) -> None:
    """While another process holds the writer lock a write waits; it commits right after."""
    db = tmp_path / "relay.db"
    store = SqliteStore(db)
    await store.open()
    try:
        other = os.open(db.with_name("relay.db.lock"), os.O_RDWR)  # as another process would
        fcntl.flock(other, fcntl.LOCK_EX)
        try:
            command = make_command(make_record(created_at=T0))
            write = asyncio.create_task(store.record(command))
            await asyncio.sleep(0.3)
            assert not write.done()
            released = time.monotonic()
        finally:
            fcntl.flock(other, fcntl.LOCK_UN)
            os.close(other)
        await write
        assert time.monotonic() - released < 0.2  # no sleep-and-retry after the release
        assert await store.get_record("deployment", "api", command.record.id) is not None
    finally:
        await store.close()


async def test_the_lock_file_sits_beside_the_database(tmp_path: Path) -> None:
    """Opening a store creates `<file>.lock` next to the database file."""
    store = SqliteStore(tmp_path / "data.db")
    await store.open()
    await store.close()
    assert (tmp_path / "data.db.lock").exists()
