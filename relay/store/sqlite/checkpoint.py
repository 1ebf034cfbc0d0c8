"""Moving the SQLite WAL into the database file often, in small steps, off the writer.

SQLite checkpoints by itself inside the COMMIT that takes the WAL past 1,000 pages:
that commit copies every page and fsyncs the database file before it returns, and
every write queued behind it waits (about 30 ms every few seconds at 200 events/s on
a plain disk, which is what a delivery's p99 saw). relay turns that off and
checkpoints a few times a second while commits keep coming, on a connection and a
thread of its own, so that the writer goes on meanwhile (a checkpoint's fsyncs take
20-80 ms now and then on a busy disk). The WAL starts over at a commit after a
checkpoint that copied all of it; a writer that never pauses has always added frames
by the time a checkpoint beside it ends, so the WAL would grow without bound. Once a
checkpoint finds CATCH_UP_FRAMES in the WAL (it did not start over since), the writer
itself checkpoints between two batches, which copies only what the last one left.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import structlog

from relay.errors import StoreError
from relay.tasks import cancel_and_wait

log = structlog.get_logger("relay.store")

CHECKPOINT_INTERVAL = 0.25  # seconds between checkpoints while commits keep coming
CATCH_UP_FRAMES = 4000  # a WAL this long (~16 MB) is finished by the writer
# (busy, frames in the WAL, frames copied), as `PRAGMA wal_checkpoint` answers.
Progress = tuple[int, int, int]


class Checkpointer:
    """Calls `checkpoint` every `interval` seconds if `commits()` grew meanwhile, and
    `catch_up` after it when it found a long WAL."""

    def __init__(
        self,
        commits: Callable[[], int],
        checkpoint: Callable[[], Awaitable[Progress]],
        catch_up: Callable[[], Awaitable[None]],
        interval: float = CHECKPOINT_INTERVAL,
    ) -> None:
        self.commits, self.checkpoint, self.catch_up = commits, checkpoint, catch_up
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start checkpointing in the background."""
        self._task = asyncio.create_task(self._run(), name="relay-sqlite-checkpoint")

    async def close(self) -> None:
        """Stop; a checkpoint in flight finishes on its own thread (the connection is
        closed on that thread, after it)."""
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        done = self.commits()
        while True:
            await asyncio.sleep(self.interval)
            now = self.commits()
            if now == done:
                continue
            done = now
            try:
                _, frames, _ = await self.checkpoint()
                if frames >= CATCH_UP_FRAMES:
                    await self.catch_up()
            except StoreError as exc:  # the next one may work; the WAL only grows meanwhile
                log.warning("checkpoint_failed", error=exc.message)


class CheckpointConnection:
    """A connection on a thread of its own that only checkpoints."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="relay-sqlite-checkpoint")
        self._conn: sqlite3.Connection | None = None

    async def checkpoint(self) -> Progress:
        """Copy what the WAL holds into the database file (sqlite3.Error if it fails)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._checkpoint)

    def _checkpoint(self) -> Progress:
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        busy, frames, copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(frames), int(copied)

    async def close(self) -> None:
        """Close the connection and stop the thread."""
        await asyncio.get_running_loop().run_in_executor(self._pool, self._close)
        self._pool.shutdown(wait=True)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
