"""Releases on SQLite: a named group of deployments, with its `release.created` event."""

from __future__ import annotations

import sqlite3
from typing import Any

from relay.store.base import Cursor
from relay.store.lifecycle_base import ReleaseCommand, ReleasePage, ReleaseRow
from relay.store.sqlite import sql as sql
from relay.store.sqlite.engine import SqliteEngine
from relay.store.sqlite.lifecycle import insert_event
from relay.store.sqlite.rows import deployment_from_row
from relay.timeutil import format_db, parse_db


def _record(conn: sqlite3.Connection, c: ReleaseCommand) -> None:
    conn.execute(
        sql.INSERT_RELEASE,
        (c.id, c.name, c.code_name, c.notes, c.triggered_by, format_db(c.created_at)),
    )
    conn.executemany(
        sql.INSERT_RELEASE_DEPLOYMENT,
        [(c.id, position, d) for position, d in enumerate(c.deployment_ids)],
    )
    # A release belongs to no single component: its event row says "".
    insert_event(conn, c.event, None, "", c.deliveries)


def _release(conn: sqlite3.Connection, row: sqlite3.Row) -> ReleaseRow:
    deployments = conn.execute(sql.RELEASE_DEPLOYMENTS, (row["id"],)).fetchall()
    return ReleaseRow(
        id=row["id"],
        seq=row["seq"],
        name=row["name"],
        code_name=row["code_name"],
        notes=row["notes"],
        triggered_by=row["triggered_by"],
        created_at=parse_db(row["created_at"]),
        deployments=[deployment_from_row(d) for d in deployments],
    )


class SqliteReleases:
    """Release operations; mixed into SqliteStore, which owns `engine`."""

    engine: SqliteEngine

    async def record_release(self, command: ReleaseCommand) -> None:
        """Release, links, event and deliveries in one transaction."""
        await self.engine.write(lambda conn: _record(conn, command))

    async def get_release(self, release_id: str) -> ReleaseRow | None:
        """One release with its deployments."""

        def op(conn: sqlite3.Connection) -> ReleaseRow | None:
            row = conn.execute(sql.SELECT_RELEASE, (release_id,)).fetchone()
            return _release(conn, row) if row else None

        return await self.engine.read(op)

    async def list_releases(self, limit: int, after: Cursor | None = None) -> ReleasePage:
        """Newest first by (created_at, seq)."""
        text, params = sql.LIST_RELEASES, list[Any]()
        if after is not None:
            text += " AND (created_at, seq) < (?, ?)"
            params += [format_db(after.occurred_at), after.seq]
        text += " ORDER BY created_at DESC, seq DESC LIMIT ?"
        params.append(limit + 1)

        def op(conn: sqlite3.Connection) -> ReleasePage:
            rows = conn.execute(text, params).fetchall()
            items = [_release(conn, r) for r in rows[:limit]]
            more = len(rows) > limit and items
            nxt = Cursor(occurred_at=items[-1].created_at, seq=items[-1].seq) if more else None
            return ReleasePage(items=items, next_cursor=nxt)

        return await self.engine.read(op)
