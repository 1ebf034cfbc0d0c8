"""Commits made to one SQLite file by other processes, noticed without a server.

SQLite has no NOTIFY. A connection's `PRAGMA data_version` changes whenever another
connection commits, so one small query every WATCH_INTERVAL tells a `relay worker`
that `relay serve --no-dispatch` (or another worker, or a CLI command) has recorded
something: its dispatcher and feed are woken then, not at their next poll.

This process's own writer changes it too. Its commits already wake what they concern,
so a change seen while the own writer also committed wakes nobody: a busy process
would otherwise wake its dispatcher for every batch of its own (and a process that
commits is busy anyway, claiming after each batch of outcomes).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import structlog

from relay.tasks import cancel_and_wait

log = structlog.get_logger("relay.store")

WATCH_INTERVAL = 0.05  # seconds: a few cheap reads per second buy a prompt wake-up


class CommitWatcher:
    """Calls its callbacks when the file changed since the last look."""

    def __init__(
        self, path: Path, own_commits: Callable[[], int], interval: float = WATCH_INTERVAL
    ) -> None:
        self.path, self.own_commits, self.interval = path, own_commits, interval
        self.callbacks: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, callback: Callable[[], None]) -> None:
        """Call `callback` after commits of other connections (starts watching)."""
        self.callbacks.append(callback)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="relay-sqlite-watch")

    async def close(self) -> None:
        """Stop watching."""
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        # Read on the event loop itself: a look takes microseconds (the WAL index is in
        # shared memory), far less than a hop to a thread, and with no busy timeout it
        # never waits for a lock (a busy look is skipped).
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        try:
            conn.execute("PRAGMA query_only=ON")
            last, own = _data_version(conn), self.own_commits()
            while True:
                await asyncio.sleep(self.interval)
                try:
                    version = _data_version(conn)
                except sqlite3.Error as exc:  # the next look may work; polls remain meanwhile
                    log.warning("commit_watch_failed", error=str(exc))
                    continue
                mine = self.own_commits()
                if version != last and mine == own:
                    for callback in self.callbacks:
                        callback()
                last, own = version, mine
        finally:
            conn.close()


def _data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])
