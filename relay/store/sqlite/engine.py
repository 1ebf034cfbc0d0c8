"""Thread-backed SQLite access: one writer with group commit, a pool of readers.

Every write operation is a plain function of a `sqlite3.Connection`. The writer
task gathers whatever operations are queued, runs them in one transaction on the
writer thread (each inside its own SAVEPOINT so one failing operation does not
undo the others: sqlite/batch.py), commits once, and only then resolves the callers'
futures. A durable write's caller resumes once the commit has reached the disk: the
WAL is synced off the writer thread (sqlite/sync.py), so that the next batch need not
wait.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import structlog

from relay.errors import StoreError
from relay.store.schema_files import Migration, read_migrations, refuse_newer
from relay.store.sqlite import compact
from relay.store.sqlite import sql as sql
from relay.store.sqlite.batch import Bulk, Item, apply_batch, translate
from relay.store.sqlite.checkpoint import CheckpointConnection, Checkpointer, Progress
from relay.store.sqlite.sync import DATA_SYNC, WalSyncer
from relay.store.sqlite.writer_lock import WriterLock
from relay.timeutil import format_db, utcnow

T = TypeVar("T")
Answer = tuple[Item, tuple[bool, Any]]  # a write and its (ok, result-or-exception)
log = structlog.get_logger("relay.store")

MIGRATIONS_DIR = Path(__file__).parent.parent / "migrations" / "sqlite"


def known_migrations() -> list[Migration]:
    """(version, name, sql) of every migration shipped with relay, in order."""
    return read_migrations(MIGRATIONS_DIR)


def _statements(script: str) -> list[str]:
    """The statements of a migration file, one at a time: a trigger's body holds `;`s
    of its own, so statements end where SQLite says one is complete."""
    found, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            found.append(pending)
            pending = ""
    if pending.strip():
        found.append(pending)
    return found


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply pending migrations; refuse a schema newer than this relay knows."""
    compact.register_migration(conn)
    conn.execute(sql.CREATE_MIGRATIONS_TABLE)
    applied = {row[0] for row in conn.execute(sql.SELECT_MIGRATIONS)}
    known = known_migrations()
    refuse_newer(applied, known)
    done = []
    for version, name, script in known:
        if version in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(sql.INSERT_MIGRATION, (version, name, format_db(utcnow())))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        done.append(version)
    return done


class SqliteEngine:
    """Owns the writer thread, the reader threads and their connections."""

    def __init__(
        self,
        path: Path,
        *,
        readers: int = 2,
        batch_max: int = 512,
        sync: Callable[[int], None] = DATA_SYNC,
    ) -> None:
        self.path = path
        self._batch_max = batch_max
        self._writer_pool = ThreadPoolExecutor(1, thread_name_prefix="relay-sqlite-writer")
        self._reader_pool = ThreadPoolExecutor(readers, thread_name_prefix="relay-sqlite-reader")
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._writer: sqlite3.Connection | None = None
        self._queue: asyncio.Queue[Item | None] = asyncio.Queue()
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        # Called at the commit of a batch in which a durable write succeeded, before the
        # fsync its callers wait for: a dispatcher starts on new deliveries meanwhile.
        self.commit_hooks: list[Callable[[], None]] = []
        self._lock = WriterLock(path)
        self.commits = 0  # transactions this engine committed (see sqlite/watch.py)
        self._checkpoints = CheckpointConnection(path)
        self._checkpointer = Checkpointer(
            lambda: self.commits, self.background_checkpoint, self.checkpoint
        )
        self._syncer = WalSyncer(path, sync)

    async def open(self) -> list[int]:
        """Open the writer, apply migrations and start the group-commit loop."""
        loop = asyncio.get_running_loop()
        try:
            applied = await loop.run_in_executor(self._writer_pool, self._open_writer)
        except BaseException as exc:
            await loop.run_in_executor(self._writer_pool, self._close_writer)
            if isinstance(exc, sqlite3.Error):
                raise translate(exc) from exc
            raise
        self._syncer.start()
        self._task = asyncio.create_task(self._commit_loop(), name="relay-sqlite-commit")
        self._checkpointer.start()
        return applied

    def _open_writer(self) -> list[int]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        compact.register(conn)
        for pragma in sql.PRAGMAS:
            conn.execute(pragma)
        self._writer = conn
        self._lock.open()
        with self._lock.held():  # two processes starting together migrate once
            applied = migrate(conn)
        # If the filesystem refused WAL mode, every commit stays FULL.
        if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            self._syncer.open()
            conn.execute("PRAGMA synchronous=NORMAL")
        # A savepoint's statement journal is a temporary file, opened at each write: kept
        # in memory, a write needs no new file descriptor, so a relay out of descriptors
        # (a fleet's connections) still records events. Set after migrating, whose index
        # builds would otherwise sort in memory too.
        conn.execute("PRAGMA temp_store=MEMORY")
        return applied

    async def close(self) -> None:
        """Finish every queued write (its caller gets its answer), then close everything.
        Calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        if self._task is not None:
            self._queue.put_nowait(None)  # the loop ends after what was queued before it
            await self._task
            self._task = None
        await self._syncer.close()
        await self._checkpointer.close()
        await self._checkpoints.close()
        await loop.run_in_executor(self._writer_pool, self._close_writer)
        await loop.run_in_executor(None, self._shutdown_pools)

    def _shutdown_pools(self) -> None:
        self._writer_pool.shutdown(wait=True)
        self._reader_pool.shutdown(wait=True)
        for conn in self._reader_conns:
            conn.close()
        self._reader_conns.clear()

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._lock.close()

    @property
    def sync_failure(self) -> StoreError | None:
        """The error of a failed fsync: no durable write succeeds after it (see WalSyncer)."""
        return self._syncer.broken

    async def write(self, op: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """Run `op` in the next group commit; return once its transaction is committed.

        `durable=False` is for bookkeeping whose loss only means work done again (leases,
        delivery outcomes: at-least-once): its caller resumes without waiting for the
        fsync. It still survives a crash of relay, just not of the machine."""
        if self._task is None or self._closed:
            raise StoreError("the store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(Item(op, None, None, future, durable))
        return await future

    async def write_bulk(self, bulk: Bulk, payload: Any) -> Any:
        """Like `write`, but `payload` is handled together with the other payloads of the
        same `bulk` function that are queued for the same commit."""
        if self._task is None or self._closed:
            raise StoreError("the store is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(Item(None, bulk, payload, future))
        return await future

    async def background_checkpoint(self) -> Progress:
        """Copy the WAL into the database file beside the writer (sqlite/checkpoint.py)."""
        if self._writer is None or self._closed:
            return (0, 0, 0)
        try:
            return await self._checkpoints.checkpoint()
        except sqlite3.Error as exc:
            raise translate(exc) from exc

    async def checkpoint(self) -> None:
        """Copy the WAL into the database file, on the writer thread between batches."""
        if self._writer is None or self._closed:
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._writer_pool, self._checkpoint)
        except sqlite3.Error as exc:
            raise translate(exc) from exc

    def _checkpoint(self) -> None:
        conn = self._writer
        if conn is not None:
            with self._lock.held():  # other processes' writers wait too: the WAL catches up
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run `op` on a reader connection (sees every committed write)."""
        if self._closed:
            raise StoreError("the store is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._reader_pool, self._run_read, op)
        except sqlite3.Error as exc:
            raise translate(exc) from exc

    def _run_read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            compact.register(conn)
            for pragma in sql.READER_PRAGMAS:
                conn.execute(pragma)
            self._local.conn = conn
            self._reader_conns.append(conn)
        return op(conn)

    async def _commit_loop(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._batch_max and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            batch = self._refuse_after_failed_sync(batch)
            if not batch:
                continue
            try:
                outcomes = await loop.run_in_executor(self._writer_pool, self._apply, batch)
            except Exception as exc:  # a bug, not a database error: fail this batch only
                log.exception("store_batch_crashed", batch=len(batch))
                outcomes = [(False, StoreError(f"write failed: {type(exc).__name__}"))] * len(batch)
            # Only what a durable write committed waits for the fsync: a lease or an
            # outcome sharing the commit of an event is answered now (a slow disk would
            # hold every delivery back), and so is a write that failed.
            now: list[Answer] = []
            synced: list[Answer] = []
            for item, outcome in zip(batch, outcomes, strict=True):
                (synced if item.durable and outcome[0] else now).append((item, outcome))
            if synced:
                self._run_hooks()
            if not self._syncer.active:
                now, synced = now + synced, []
            self._release(now, None)
            if synced:
                self._syncer.after_sync(partial(self._release, synced))

    def _refuse_after_failed_sync(self, batch: list[Item]) -> list[Item]:
        """The batch without its durable writes once an fsync failed: they are answered
        with that error and not committed, so that nothing refused is kept or sent."""
        broken = self._syncer.broken
        if broken is None:
            return batch
        for item in batch:
            if item.durable and not item.future.done():
                item.future.set_exception(broken)
        return [item for item in batch if not item.durable]

    def _run_hooks(self) -> None:
        for hook in self.commit_hooks:
            try:
                hook()
            except Exception:  # a listener's bug must not stop the commit loop
                log.exception("store_commit_hook_failed")

    @staticmethod
    def _release(answers: list[Answer], error: StoreError | None) -> None:
        """Answer committed writes' callers (all failing with `error` if their sync did)."""
        for item, (ok, value) in answers:
            if item.future.done():
                continue
            if not ok:
                item.future.set_exception(value)
            elif error is not None:
                item.future.set_exception(error)
            else:
                item.future.set_result(value)

    def _apply(self, batch: list[Item]) -> list[tuple[bool, Any]]:
        conn = self._writer
        assert conn is not None
        conn.row_factory = sqlite3.Row
        with self._lock.held():
            return self._transaction(conn, batch)

    def _transaction(self, conn: sqlite3.Connection, batch: list[Item]) -> list[tuple[bool, Any]]:
        try:
            conn.execute("BEGIN IMMEDIATE")
            outcomes = apply_batch(conn, batch)
            conn.execute("COMMIT")
            self.commits += 1
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            log.error("store_write_failed", error=str(exc), batch=len(batch))
            return [(False, translate(exc)) for _ in batch]
        return outcomes
