"""PostgreSQL access: a connection pool, migrations under an advisory lock, one LISTEN
connection for wake-ups, and driver errors translated into relay's own.

Several relay instances share one database, so nothing here assumes it is alone: schema
migrations are applied by whichever instance takes the advisory lock first (the others
wait, then find nothing left to do), and leases are never released wholesale at start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeAlias, TypeVar
from urllib.parse import urlsplit

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

from relay.errors import StoreError, StoreUnavailable, ValidationFailed
from relay.ids import new_hex_id
from relay.store.postgres import sql as sql
from relay.store.schema_files import Migration, read_migrations, refuse_newer
from relay.tasks import cancel_and_wait

T = TypeVar("T")
# What store operations run on: a connection borrowed from the pool.
Conn: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"
log = structlog.get_logger("relay.store")

MIGRATIONS_DIR = Path(__file__).parent.parent / "migrations" / "postgres"
# How long one connection attempt may take before the database counts as unreachable.
CONNECT_TIMEOUT = 5.0
# The LISTEN connection is re-established after this many seconds, doubling up to the max.
LISTEN_RETRY, LISTEN_RETRY_MAX = 0.5, 10.0

# Driver errors that mean "the database cannot be reached (right now)", not "bad request".
_UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


def safe_location(url: str) -> str:
    """host:port/database of a URL, never its user or password (for messages and logs)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path}"


def translate(exc: BaseException, where: str) -> Exception:
    """A driver error as relay's error, worded for an operator; others pass unchanged."""
    if isinstance(exc, _UNREACHABLE):
        detail = str(exc) or type(exc).__name__
        return StoreUnavailable(f"the database at {where} is not reachable: {detail}")
    if isinstance(
        exc, asyncpg.CharacterNotInRepertoireError | asyncpg.UntranslatableCharacterError
    ):
        return ValidationFailed(
            "text fields may not contain NUL characters",
            details=[{"field": "body", "message": "remove \\u0000 characters"}],
        )
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return StoreError(f"the database at {where} refused the credentials: {exc}")
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return StoreError(f"the database at {where} does not exist")
    if isinstance(exc, asyncpg.PostgresError):
        return StoreError(f"database error: {exc}")
    if isinstance(exc, Exception):
        return exc
    raise exc


def known_migrations() -> list[Migration]:
    """(version, name, sql) of every PostgreSQL migration shipped with relay, in order."""
    return read_migrations(MIGRATIONS_DIR)


async def migrate(conn: Conn) -> list[int]:
    """Apply pending migrations under an advisory lock (instances starting together take
    turns); refuse a schema newer than this relay knows."""
    await conn.execute(sql.MIGRATION_LOCK)
    try:
        await conn.execute(sql.CREATE_MIGRATIONS_TABLE)
        applied = {r[0] for r in await conn.fetch(sql.SELECT_MIGRATIONS)}
        known = known_migrations()
        refuse_newer(applied, known)
        done = []
        for version, name, script in known:
            if version in applied:
                continue
            async with conn.transaction():
                await conn.execute(script)
                await conn.execute(sql.INSERT_MIGRATION, version, name)
            done.append(version)
            log.info("store_migrated", version=version, name=name)
        return done
    finally:
        await conn.execute(sql.MIGRATION_UNLOCK)


class PgEngine:
    """Owns the pool and the LISTEN connection of one PostgresStore."""

    def __init__(self, url: str, *, pool_min: int = 1, pool_max: int = 10) -> None:
        self.url = url
        self.where = safe_location(url)
        self.pool_min, self.pool_max = pool_min, pool_max
        # Tags this instance's notifications, so that it does not wake itself twice.
        self.instance = new_hex_id()
        self.channel = sql.CHANNEL
        self.due_listeners: list[Callable[[], None]] = []
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._listener: asyncpg.Connection[asyncpg.Record] | None = None
        self._relisten: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def opened(self) -> bool:
        """True between a successful open() and close()."""
        return self._pool is not None and not self._closed

    async def open(self) -> list[int]:
        """Connect (one attempt: StoreUnavailable when the database cannot be reached),
        apply migrations, start listening for other instances' commits."""
        try:
            pool = await asyncpg.create_pool(
                self.url,
                min_size=min(self.pool_min, self.pool_max),
                max_size=self.pool_max,
                timeout=CONNECT_TIMEOUT,
            )
        except Exception as exc:
            raise translate(exc, self.where) from exc
        try:
            async with pool.acquire() as conn:
                schema = await conn.fetchval(sql.CURRENT_SCHEMA)
                if schema is None:
                    raise StoreError(f"the database at {self.where} has no schema to use")
                applied = await migrate(conn)
            self.channel = sql.channel_for(str(schema))
            self._pool = pool
            await self._listen()
        except BaseException as exc:
            self._pool = None
            await pool.close()
            if isinstance(exc, Exception):
                raise translate(exc, self.where) from exc
            raise
        return applied

    async def close(self) -> None:
        """Stop listening and close every connection; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        await cancel_and_wait(self._relisten)
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close(timeout=2)
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pool.close(), timeout=5)
            self._pool = None

    async def run(self, op: Callable[[Conn], Awaitable[T]]) -> T:
        """Run `op` on a pooled connection; driver errors become relay's."""
        if self._closed:
            raise StoreError("the store is closed")
        if self._pool is None:
            raise StoreUnavailable(f"the database at {self.where} is not reachable yet")
        try:
            async with self._pool.acquire(timeout=CONNECT_TIMEOUT) as conn:
                return await op(conn)
        except Exception as exc:
            raise translate(exc, self.where) from exc

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """Rows of one statement."""
        return await self.run(lambda conn: conn.fetch(query, *args))

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        """The first row of one statement, if any."""
        return await self.run(lambda conn: conn.fetchrow(query, *args))

    async def execute(self, query: str, *args: Any) -> str:
        """Run one statement; its status tag (e.g. "UPDATE 3")."""
        return await self.run(lambda conn: conn.execute(query, *args))

    # -- LISTEN/NOTIFY ------------------------------------------------------------------
    async def _listen(self) -> None:
        conn = await asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT)
        await conn.add_listener(self.channel, self._notified)
        conn.add_termination_listener(self._listen_lost)
        self._listener = conn

    def _notified(self, conn: object, pid: int, channel: str, payload: object) -> None:
        if payload != self.instance:
            self._wake()

    def _wake(self) -> None:
        for callback in self.due_listeners:
            callback()

    def _listen_lost(self, conn: object) -> None:
        if self._closed or (self._relisten is not None and not self._relisten.done()):
            return
        log.warning("store_listen_lost", url=self.where)
        self._relisten = asyncio.get_running_loop().create_task(self._listen_again())

    async def _listen_again(self) -> None:
        delay, attempt = LISTEN_RETRY, 0
        while not self._closed:
            attempt += 1
            await asyncio.sleep(delay)
            try:
                await self._listen()
            except Exception as exc:
                log.warning(
                    "store_unavailable",
                    url=self.where,
                    attempt=attempt,
                    delay=delay,
                    error=str(translate(exc, self.where)),
                )
                delay = min(delay * 2, LISTEN_RETRY_MAX)
                continue
            log.info("store_listen_restored", url=self.where)
            self._wake()  # a commit may have been missed while nobody listened
            return
