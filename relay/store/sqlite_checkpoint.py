"""Moving the SQLite WAL into the database file often, in small steps.

SQLite checkpoints by itself inside the COMMIT that takes the WAL past 1,000 pages:
that commit copies every page and fsyncs the database file before it returns, and
every write queued behind it waits (about 30 ms every few seconds at 200 events/s on
a plain disk, which is what a delivery's p99 saw). relay turns that off and has the
writer checkpoint between two batches, a few times a second while commits keep
coming: each copies a fraction of a second's pages, so the pause is a few ms, and the
WAL still starts over after each (a checkpoint running beside a busy writer would
never catch up with it, and the WAL would grow without bound).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from relay.errors import StoreError
from relay.tasks import cancel_and_wait

log = structlog.get_logger("relay.store")

CHECKPOINT_INTERVAL = 0.25  # seconds between checkpoints while commits keep coming


class Checkpointer:
    """Calls `checkpoint` every `interval` seconds if `commits()` grew meanwhile."""

    def __init__(
        self,
        commits: Callable[[], int],
        checkpoint: Callable[[], Awaitable[None]],
        interval: float = CHECKPOINT_INTERVAL,
    ) -> None:
        self.commits, self.checkpoint, self.interval = commits, checkpoint, interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start checkpointing in the background."""
        self._task = asyncio.create_task(self._run(), name="relay-sqlite-checkpoint")

    async def close(self) -> None:
        """Stop (a checkpoint in flight ends first)."""
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
                await self.checkpoint()
            except StoreError as exc:  # the next one may work; the WAL only grows meanwhile
                log.warning("checkpoint_failed", error=exc.message)
