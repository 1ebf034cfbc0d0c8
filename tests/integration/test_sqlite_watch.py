"""Another process's commit to the SQLite file wakes this one (relay/store/sqlite/watch.py):
a `relay worker` learns of an event recorded by `relay serve --no-dispatch` at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from relay.store.sqlite.store import SqliteStore
from tests.support import T0, make_command, make_record


async def test_a_commit_by_another_connection_wakes_the_listener(tmp_path: Path) -> None:
    """A listener hears of another store's commit within a fraction of a second."""
    db = tmp_path / "relay.db"
    worker, api = SqliteStore(db), SqliteStore(db)
    await worker.open()
    await api.open()
    woken = asyncio.Event()
    try:
        worker.add_due_listener(woken.set)
        await asyncio.sleep(0.2)
        assert not woken.is_set()  # nothing was committed
        started = time.monotonic()
        await api.record(make_command(make_record(created_at=T0), forwarders=["hook"]))
        async with asyncio.timeout(2):
            await woken.wait()
        assert time.monotonic() - started < 0.5
    finally:
        await api.close()
        await worker.close()


async def test_closing_the_store_stops_the_watch(tmp_path: Path) -> None:
    """After close, no listener is called any more."""
    db = tmp_path / "relay.db"
    watched, writer = SqliteStore(db), SqliteStore(db)
    await watched.open()
    await writer.open()
    calls: list[int] = []
    watched.add_due_listener(lambda: calls.append(1))
    await watched.close()
    try:
        await writer.record(make_command(make_record(created_at=T0)))
        await asyncio.sleep(0.2)
        assert calls == []
    finally:
        await writer.close()
