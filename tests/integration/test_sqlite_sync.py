"""Durable writes are answered once the WAL is synced, on a thread of its own
(relay/store/sqlite_sync.py), while writes that need no sync go on meanwhile."""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay.errors import StoreError
from relay.store.sqlite_engine import SqliteEngine
from relay.store.sqlite_sync import wal_path

CREATE = "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)"


class GatedSync:
    """os.fdatasync that records which file it synced and can be held shut."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.open.set()
        self.inodes: list[int] = []
        self.fail: OSError | None = None

    def __call__(self, fd: int) -> None:
        assert self.open.wait(10), "the test never released the sync"
        if self.fail is not None:
            raise self.fail
        self.inodes.append(os.fstat(fd).st_ino)
        os.fdatasync(fd)


@pytest.fixture
def gate() -> GatedSync:
    return GatedSync()


@pytest.fixture
async def engine(tmp_path: Path, gate: GatedSync) -> AsyncIterator[SqliteEngine]:
    engine = SqliteEngine(tmp_path / "relay.db", sync=gate)
    await engine.open()
    await engine.write(lambda conn: conn.execute(CREATE))
    yield engine
    gate.open.set()
    await engine.close()


def _insert(text: str) -> object:
    return lambda conn: conn.execute("INSERT INTO notes (text) VALUES (?)", (text,)).lastrowid


def _count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM notes").fetchone()[0])


async def test_every_durable_commit_is_followed_by_a_sync_of_the_wal(
    tmp_path: Path, engine: SqliteEngine, gate: GatedSync
) -> None:
    """What relay syncs after a durable commit is the database's WAL file."""
    gate.inodes.clear()
    await engine.write(_insert("one"))
    assert gate.inodes, "no sync after a durable commit"
    assert set(gate.inodes) == {wal_path(tmp_path / "relay.db").stat().st_ino}


async def test_a_durable_write_is_answered_only_after_its_sync(
    engine: SqliteEngine, gate: GatedSync
) -> None:
    """While the sync is held the durable write waits (though committed); a write that
    needs no sync is answered meanwhile; releasing the sync answers the first."""
    gate.open.clear()
    durable = asyncio.ensure_future(engine.write(_insert("event")))
    await asyncio.sleep(0.2)
    assert not durable.done()
    assert await engine.read(_count) == 1  # committed, only not yet acknowledged
    await asyncio.wait_for(engine.write(_insert("lease"), durable=False), timeout=5)
    assert not durable.done()
    gate.open.set()
    assert await asyncio.wait_for(durable, timeout=5) == 1


async def test_a_write_sharing_a_commit_with_a_durable_one_does_not_wait_for_its_sync(
    engine: SqliteEngine, gate: GatedSync
) -> None:
    """A lease written in the same commit as an event is answered while that commit's
    sync is still held; the event only once the sync is done."""
    gate.open.clear()
    commits = engine.commits
    durable = asyncio.ensure_future(engine.write(_insert("event")))
    lease = asyncio.ensure_future(engine.write(_insert("lease"), durable=False))
    assert await asyncio.wait_for(lease, timeout=5) == 2
    assert engine.commits == commits + 1  # one commit held both
    await asyncio.sleep(0.1)
    assert not durable.done()
    gate.open.set()
    assert await asyncio.wait_for(durable, timeout=5) == 1


async def test_commits_made_during_one_sync_share_the_next(tmp_path: Path, gate: GatedSync) -> None:
    """20 durable writes committed one by one while a sync is held are all answered by
    at most two more syncs, not one each."""
    engine = SqliteEngine(tmp_path / "relay.db", batch_max=1, sync=gate)
    await engine.open()
    try:
        await engine.write(lambda conn: conn.execute(CREATE))
        gate.open.clear()
        writes = [asyncio.ensure_future(engine.write(_insert(f"n{i}"))) for i in range(20)]
        while await engine.read(_count) < 20:  # each in a commit of its own (batch_max=1)
            await asyncio.sleep(0.01)
        gate.inodes.clear()
        gate.open.set()
        await asyncio.wait_for(asyncio.gather(*writes), timeout=5)
        assert 1 <= len(gate.inodes) <= 2
    finally:
        gate.open.set()
        await engine.close()


async def test_a_failed_sync_fails_every_durable_write_until_a_restart(
    tmp_path: Path, engine: SqliteEngine, gate: GatedSync
) -> None:
    """An fsync error fails the waiting durable writes with a StoreError that says so,
    and every later one too (the kernel may have dropped the pages: a later sync that
    succeeds proves nothing); writes that need no sync go on; a restart recovers."""
    gate.fail = OSError(errno.EIO, "Input/output error")
    with pytest.raises(StoreError, match="fsync failed"):
        await engine.write(_insert("lost"))
    gate.fail = None
    with pytest.raises(StoreError, match="restart relay"):
        await engine.write(_insert("refused"))
    assert await engine.write(_insert("lease"), durable=False) == 3
    await engine.close()
    again = SqliteEngine(tmp_path / "relay.db", sync=gate)
    await again.open()
    try:
        assert await again.write(_insert("after restart")) == 4
    finally:
        await again.close()


async def test_closing_answers_the_writes_still_waiting_for_their_sync(
    tmp_path: Path, gate: GatedSync
) -> None:
    """A durable write waiting for its sync when the store closes is answered, not
    dropped."""
    engine = SqliteEngine(tmp_path / "relay.db", sync=gate)
    await engine.open()
    await engine.write(lambda conn: conn.execute(CREATE))
    gate.open.clear()
    pending = asyncio.ensure_future(engine.write(_insert("late")))
    await asyncio.sleep(0.1)
    closing = asyncio.ensure_future(engine.close())
    await asyncio.sleep(0.1)
    assert not closing.done()
    gate.open.set()
    await asyncio.wait_for(closing, timeout=5)
    assert pending.result() == 1
