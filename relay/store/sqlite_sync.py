"""Making SQLite commits durable on a thread of their own.

With `synchronous=FULL` every COMMIT waits for an fsync of the WAL on the writer
thread, and so does every write queued behind it: lease claims and delivery outcomes,
which need no fsync, waited for the events' ones. A plain disk answers most fsyncs in
a fraction of a millisecond but some in 20-40 ms, and each such one held every
delivery in flight that long (the p99 of 201 -> target was those stalls).

relay's writer commits with `synchronous=NORMAL` (a commit survives a crash of relay,
not yet of the machine) and this syncer fdatasyncs the WAL file afterwards, while the
writer goes on with the next batch. A durable write's caller is answered only once a
sync that began after its commit has returned; syncs coalesce, so one covers every
commit made while the previous one ran. SQLite itself still syncs around checkpoints,
so the database file never holds a page whose WAL frame could be lost.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import structlog

from relay.errors import StoreError

log = structlog.get_logger("relay.store")

# Called with None once the commit is on disk, or with the error that prevented it.
Done = Callable[[StoreError | None], None]
# fdatasync skips metadata a read does not need (mtime); macOS has only fsync.
DATA_SYNC: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)


def wal_path(db: Path) -> Path:
    """The write-ahead log SQLite keeps next to `db`."""
    return db.with_name(db.name + "-wal")


class WalSyncer:
    """fdatasyncs the WAL of one database for whoever waits, one sync for all waiting."""

    def __init__(self, db: Path, sync: Callable[[int], None] = DATA_SYNC) -> None:
        self.db, self._sync = db, sync
        self._fd: int | None = None
        self._waiting: list[Done] = []
        self._wake = asyncio.Event()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="relay-sqlite-sync")
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.syncs = 0

    def open(self) -> bool:
        """Open the WAL and make it and its directory entry durable (blocking: call it
        on a thread). False if there is no WAL file to sync."""
        try:
            fd = os.open(wal_path(self.db), os.O_RDONLY)
        except FileNotFoundError:
            return False
        self._fd = fd
        self._sync(fd)
        directory = os.open(self.db.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return True

    def start(self) -> None:
        """Start answering `after_sync` requests."""
        self._task = asyncio.create_task(self._run(), name="relay-sqlite-sync")

    def after_sync(self, done: Done) -> None:
        """Call `done` once everything committed so far is on disk."""
        self._waiting.append(done)
        self._wake.set()

    async def close(self) -> None:
        """Sync for whoever still waits, then stop and close the WAL."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._pool.shutdown(wait=True)

    async def _run(self) -> None:
        while not (self._stopping and not self._waiting):
            await self._wake.wait()
            self._wake.clear()
            if self._waiting:
                await self._sync_waiting()

    async def _sync_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        error: StoreError | None = None
        assert self._fd is not None
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._sync, self._fd)
            self.syncs += 1
        except OSError as exc:
            log.error("store_sync_failed", error=str(exc))
            error = StoreError("the database could not be written to disk (fsync failed)")
        for done in waiting:
            done(error)
