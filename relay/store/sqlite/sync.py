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

A commit is visible before its sync has returned: readers and the dispatcher may see
it (and send it) in that moment, so after a power cut in it a target can hold an event
whose sender never got its 201, and that relay no longer has. What was acknowledged
is never lost.
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
    """fdatasyncs the WAL of one database for whoever waits, one sync for all waiting.

    A failed sync is final: after an I/O error the kernel may drop the unwritten pages
    and report the next sync as a success, and SQLite's recovery stops at the first
    missing frame, so later commits could not be promised either. Every durable write
    fails from then on, until relay is restarted (and SQLite recovers the file)."""

    def __init__(self, db: Path, sync: Callable[[int], None] = DATA_SYNC) -> None:
        self.db, self._sync = db, sync
        self._fd: int | None = None
        self._waiting: list[Done] = []
        self._wake = asyncio.Event()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="relay-sqlite-sync")
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.broken: StoreError | None = None

    def open(self) -> None:
        """Open the WAL and make it and its directory entry durable (blocking: call it
        on a thread, once the database is in WAL mode)."""
        try:
            self._fd = os.open(wal_path(self.db), os.O_RDONLY)
            self._sync(self._fd)
        except OSError as exc:
            self._close_fd()
            raise StoreError(f"the database's write-ahead log cannot be synced ({exc})") from exc
        try:
            directory = os.open(self.db.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(directory)
        except OSError:
            pass  # some filesystems refuse to fsync a directory; SQLite ignores it too
        finally:
            os.close(directory)

    @property
    def active(self) -> bool:
        """Whether commits are synced here (the WAL is open), not by SQLite itself."""
        return self._fd is not None

    def start(self) -> None:
        """Start answering `after_sync` requests (if active)."""
        if self.active:
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
        self._answer(self._take(), StoreError("the store is closed"))
        self._close_fd()
        self._pool.shutdown(wait=True)

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    async def _run(self) -> None:
        while not (self._stopping and not self._waiting):
            await self._wake.wait()
            self._wake.clear()
            waiting = self._take()
            try:
                error = await self._sync_once()
            finally:
                # Cancelled or not, nobody is left waiting for an answer.
                self._answer(waiting, self.broken or error)

    async def _sync_once(self) -> StoreError | None:
        if self.broken is not None or self._fd is None:
            return self.broken
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._sync, self._fd)
        except Exception as exc:
            log.error("store_sync_failed", error=str(exc))
            self.broken = StoreError(
                "the database could not be written to disk (fsync failed); restart relay"
            )
            return self.broken
        return None

    def _take(self) -> list[Done]:
        waiting, self._waiting = self._waiting, []
        return waiting

    def _answer(self, waiting: list[Done], error: StoreError | None) -> None:
        for done in waiting:
            try:
                done(error)
            except Exception:  # one caller's hook must not cost the others their answer
                log.exception("store_sync_callback_failed")
