"""The seed dialects' side of the SQLite Store: kept names, numbers, numbered pages."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from relay.models import Deployment
from relay.store.dialect_base import NameRow, NumberedPage
from relay.store.sqlite import sql as sql
from relay.store.sqlite.engine import SqliteEngine
from relay.store.sqlite.rows import deployment_from_row
from relay.timeutil import format_db

INSERT_NAME = (
    "INSERT OR IGNORE INTO dialect_names (scope, folded, name, slug, created_at) "
    "VALUES (?, ?, ?, ?, ?)"
)
# The row kept for the key first, else the one holding the slug.
KEPT_NAME = """
SELECT scope, folded, name, slug FROM dialect_names
WHERE scope = ? AND (folded = ? OR slug = ?) ORDER BY folded = ? DESC LIMIT 1
"""
BY_NUMBER = (
    f"SELECT {sql.READ_COLUMNS} FROM deployments "
    "WHERE seq = ? AND component = ? AND kind = 'deployment'"
)
COUNT = "SELECT COUNT(*) FROM deployments WHERE component = ? AND kind = 'deployment'"
NUMBERED = (
    f"SELECT {sql.READ_COLUMNS} FROM deployments WHERE component = ? AND kind = 'deployment' "
    "ORDER BY occurred_at DESC, seq DESC LIMIT ? OFFSET ?"
)


class SqliteDialects:
    """Mixed into SqliteStore, which owns `engine`."""

    engine: SqliteEngine

    async def claim_name(self, row: NameRow, at: datetime) -> NameRow:
        """Keep the name unless its key or slug is kept; the row that is kept."""
        stamp = format_db(at)

        def op(conn: sqlite3.Connection) -> NameRow:
            conn.execute(INSERT_NAME, (row.scope, row.folded, row.name, row.slug, stamp))
            kept = conn.execute(KEPT_NAME, (row.scope, row.folded, row.slug, row.folded))
            found = kept.fetchone()
            return NameRow(found[0], found[1], found[2], found[3])

        return await self.engine.write(op)

    async def deployment_by_number(self, component: str, number: int) -> Deployment | None:
        """The deployment of `component` whose seq is `number`."""

        def op(conn: sqlite3.Connection) -> Deployment | None:
            found = conn.execute(BY_NUMBER, (number, component)).fetchone()
            return deployment_from_row(found) if found else None

        return await self.engine.read(op)

    async def numbered_page(self, component: str, offset: int, limit: int) -> NumberedPage:
        """One page and the total, read in one snapshot."""

        def op(conn: sqlite3.Connection) -> NumberedPage:
            conn.execute(sql.BEGIN_READ)
            try:
                total = int(conn.execute(COUNT, (component,)).fetchone()[0])
                found = conn.execute(NUMBERED, (component, limit, offset)).fetchall()
            finally:
                conn.execute(sql.END_READ)
            return NumberedPage([deployment_from_row(r) for r in found], total)

        return await self.engine.read(op)
