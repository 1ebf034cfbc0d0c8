"""The multi-process side of the SQLite store: leases are renewed, circuit state is kept
(it outlives a restart), and other processes' commits wake this one's dispatcher."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from relay.store.cluster_base import CircuitChange, CircuitSnapshot
from relay.store.sqlite import sql as sql
from relay.store.sqlite.compact import id_key, micros
from relay.store.sqlite.engine import SqliteEngine
from relay.store.sqlite.watch import CommitWatcher
from relay.timeutil import format_db, parse_db, utcnow


def _snapshot(row: sqlite3.Row | tuple[int, str | None, int | None]) -> CircuitSnapshot:
    failures, opened_until, cooldown_ms = row[0], row[1], row[2]
    return CircuitSnapshot(
        failures=failures,
        opened_until=parse_db(opened_until) if opened_until else None,
        cooldown=timedelta(milliseconds=cooldown_ms) if cooldown_ms is not None else None,
    )


def _cooldown_ms(value: timedelta | None) -> int | None:
    return None if value is None else round(value.total_seconds() * 1000)


class SqliteCluster:
    """Lease renewal and circuit state; mixed into SqliteStore, which owns `engine`."""

    engine: SqliteEngine
    watcher: CommitWatcher

    async def renew(self, owner: str, ids: Sequence[str], until: datetime) -> int:
        """Extend the leases `owner` holds on pending deliveries `ids`."""
        stamp = micros(until)
        rows = [(stamp, id_key(delivery_id), owner) for delivery_id in ids]
        if not rows:
            return 0
        return await self.engine.write(
            lambda conn: conn.executemany(sql.RENEW_LEASE, rows).rowcount, durable=False
        )

    async def update_circuit(self, forwarder: str, change: CircuitChange) -> CircuitSnapshot:
        """Read, change and write the forwarder's circuit state in one transaction."""

        def op(conn: sqlite3.Connection) -> CircuitSnapshot:
            row = conn.execute(sql.SELECT_CIRCUIT, (forwarder,)).fetchone()
            new = change(_snapshot(row) if row else CircuitSnapshot())
            until = format_db(new.opened_until) if new.opened_until else None
            conn.execute(
                sql.UPSERT_CIRCUIT,
                (forwarder, new.failures, until, _cooldown_ms(new.cooldown), format_db(utcnow())),
            )
            return new

        return await self.engine.write(op)

    async def circuits(self) -> dict[str, CircuitSnapshot]:
        """Every forwarder's stored circuit state."""
        return await self.engine.read(
            lambda conn: {r[0]: _snapshot(tuple(r)[1:]) for r in conn.execute(sql.SELECT_CIRCUITS)}
        )

    def add_due_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback` soon after another connection (another process: a
        `relay serve --no-dispatch`, a worker) commits to the file."""
        self.watcher.add(callback)

    def add_commit_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback` at each commit of a durable write (new events, before their
        fsync): the dispatcher claims their deliveries while the fsync runs."""
        self.engine.commit_hooks.append(callback)
