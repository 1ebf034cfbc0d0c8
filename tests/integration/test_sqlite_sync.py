"""Durable writes are answered once the WAL is synced, on a thread of its own
(relay/store/sqlite/sync.py), while writes that need no sync go on meanwhile."""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from relay.app import create_app
from relay.errors import StoreError
from relay.standins.base import Fault
from relay.standins.webhook import WebhookReceiver
from relay.store.sqlite.engine import SqliteEngine
from relay.store.sqlite.store import SqliteStore
from relay.store.sqlite.sync import wal_path
from tests.acceptance.api import bearer
from tests.delivery_support import SECRET, engine_settings, eventually, webhook
from tests.support import ADMIN_TOKEN, CI_TOKEN

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


async def test_commit_listeners_hear_durable_commits_before_their_sync(
    engine: SqliteEngine, gate: GatedSync
) -> None:
    """A commit listener is called at the commit of a durable write, while its sync is
    still held; writes that need no sync (leases, outcomes) call nobody."""
    heard: list[int] = []
    engine.commit_hooks.append(lambda: heard.append(1))
    await engine.write(_insert("lease"), durable=False)
    assert heard == []
    gate.open.clear()
    durable = asyncio.ensure_future(engine.write(_insert("event")))
    await eventually(lambda: heard == [1], what="a listener called at the commit")
    assert not durable.done()
    gate.open.set()
    await asyncio.wait_for(durable, timeout=5)


async def test_a_delivery_starts_at_the_commit_while_the_201_waits_for_the_fsync(
    tmp_path: Path, gate: GatedSync, aiohttp_client: AiohttpClient
) -> None:
    """With the disk slow to sync, a posted event already reaches its webhook target while
    the sender still waits for its 201, which comes once the event is on disk."""
    target = WebhookReceiver(SECRET)
    await target.start()
    try:
        db = tmp_path / "relay.db"
        settings = engine_settings(db, [webhook("hook", target.endpoint)])
        client = await aiohttp_client(create_app(settings, SqliteStore(db, sync=gate)))

        def post(version: str) -> asyncio.Future[Any]:
            body = {"version": version, "result": "success"}
            return asyncio.ensure_future(
                client.post("/components/api/deployments", json=body, headers=bearer(CI_TOKEN))
            )

        assert (await post("1.0.0")).status == 201  # the dispatcher is idle after this one
        await eventually(lambda: len(target.events) == 1, what="the first delivery")
        gate.open.clear()
        posting = post("1.0.1")
        # Well within the 5 s poll: only the commit itself can have woken the dispatcher.
        await eventually(lambda: len(target.events) == 2, timeout=2, what="delivery before fsync")
        assert not posting.done()
        gate.open.set()
        response = await asyncio.wait_for(posting, timeout=5)
        assert response.status == 201
        assert target.events[1].payload["data"]["id"] == (await response.json())["id"]
    finally:
        gate.open.set()
        await target.stop()


async def test_a_durable_write_that_failed_is_answered_without_waiting_for_a_sync(
    engine: SqliteEngine, gate: GatedSync
) -> None:
    """A durable write that fails (its own error, the rest of its commit kept) gets that
    error while the commit's sync is still held; the others wait for the sync."""

    def bad(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO notes (text) VALUES (NULL)")  # NOT NULL: refused

    gate.open.clear()
    good = asyncio.ensure_future(engine.write(_insert("event")))
    failing = asyncio.ensure_future(engine.write(bad))
    with pytest.raises(StoreError):
        await asyncio.wait_for(failing, timeout=5)
    assert not good.done()
    gate.open.set()
    assert await asyncio.wait_for(good, timeout=5) == 1


async def test_a_retry_answers_the_delivery_as_it_made_it_though_sent_before_the_fsync(
    tmp_path: Path, gate: GatedSync, aiohttp_client: AiohttpClient
) -> None:
    """POST /deliveries/{id}/retry answers the delivery as pending (what the retry made of
    it), even when the dispatcher, woken at the commit, delivered it before the fsync
    that the answer waits for."""
    target = WebhookReceiver(SECRET)
    target.faults.append(Fault(422, {"error": "archived"}))
    await target.start()
    try:
        db = tmp_path / "relay.db"
        settings = engine_settings(db, [webhook("hook", target.endpoint)])
        client = await aiohttp_client(create_app(settings, SqliteStore(db, sync=gate)))
        body = {"version": "1.0.0", "result": "success"}
        posted = await client.post("/components/api/deployments", json=body, headers=bearer())
        deployment = (await posted.json())["id"]
        path = f"/components/api/deployments/{deployment}/deliveries"

        async def dead() -> Any:
            (found,) = await (await client.get(path, headers=bearer())).json()
            return found if found["status"] == "dead" else None

        delivery = await eventually(dead, what="the first attempt dead")
        gate.open.clear()
        retry = asyncio.ensure_future(
            client.post(f"/deliveries/{delivery['id']}/retry", headers=bearer(ADMIN_TOKEN))
        )
        await eventually(lambda: target.events, timeout=2, what="sent before the fsync")
        gate.open.set()
        answer = await asyncio.wait_for(retry, timeout=5)
        assert answer.status == 202
        assert (await answer.json())["status"] == "pending"
    finally:
        gate.open.set()
        await target.stop()


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
    and every later one too, uncommitted and heard by no listener (the kernel may have
    dropped the pages: a later sync that succeeds proves nothing); writes that need no
    sync go on; a restart recovers."""
    gate.fail = OSError(errno.EIO, "Input/output error")
    with pytest.raises(StoreError, match="fsync failed"):
        await engine.write(_insert("lost"))
    gate.fail = None
    heard: list[int] = []
    engine.commit_hooks.append(lambda: heard.append(1))
    with pytest.raises(StoreError, match="restart relay"):
        await engine.write(_insert("refused"))
    assert await engine.write(_insert("lease"), durable=False) == 2
    assert heard == []
    await engine.close()
    again = SqliteEngine(tmp_path / "relay.db", sync=gate)
    await again.open()
    try:
        assert await again.write(_insert("after restart")) == 3
        texts = await again.read(lambda c: [r[0] for r in c.execute("SELECT text FROM notes")])
        assert "refused" not in texts and "lease" in texts
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
