"""Turns between the SQLite writers of several processes on one database file.

Each process has one writer thread (group commit). When several processes share a
file (`relay serve --no-dispatch` beside `relay worker`, several worker processes),
their write transactions are queued on an exclusive `flock` of `<file>.lock` taken
before `BEGIN IMMEDIATE`: the next writer starts the moment the lock is free,
instead of SQLite's busy handler retrying after sleeps of up to 100 ms.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

log = structlog.get_logger("relay.store")


class WriterLock:
    """An exclusive lock shared by every relay process writing one SQLite file."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None
        self._usable = True

    def open(self) -> None:
        """Open (create) the lock file; without it, writers fall back to SQLite's own
        waiting."""
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            self._usable = False
            log.warning("writer_lock_unavailable", path=str(self.path), error=str(exc))

    def close(self) -> None:
        """Close the lock file (which releases the lock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the body of the `with` (blocks this thread until free)."""
        fd = self._fd if self._usable else None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:  # a filesystem without flock: SQLite's waiting only
                self._usable, fd = False, None
                log.warning("writer_lock_unavailable", path=str(self.path), error=str(exc))
        try:
            yield
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
