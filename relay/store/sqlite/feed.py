"""The live feed's reads on SQLite: rows after a position, by stream (see feed_base.py).

Nothing is written for the feed: it reads the rows ingest and delivery write anyway
(`events.seq`, `attempts.id`, `outputs.seq`), so watching costs ingest nothing. One writer assigns
those numbers inside its transactions, so a reader never sees a gap that a later
commit fills.
"""

from __future__ import annotations

import sqlite3

from relay.store import rows
from relay.store.feed_base import FeedCursor, FeedPage
from relay.store.sqlite import sql as sql
from relay.store.sqlite.compact import from_micros
from relay.store.sqlite.engine import SqliteEngine
from relay.timeutil import parse_db


class SqliteFeed:
    """Feed reads; mixed into SqliteStore, which owns `engine`."""

    engine: SqliteEngine

    async def feed_position(self) -> FeedCursor:
        """The newest event seq, attempt id and output line seq."""

        def op(conn: sqlite3.Connection) -> FeedCursor:
            row = conn.execute(sql.FEED_POSITION).fetchone()
            return FeedCursor(
                events=row["events"], attempts=row["attempts"], outputs=row["outputs"]
            )

        return await self.engine.read(op)

    async def feed_after(self, cursor: FeedCursor, limit: int) -> FeedPage:
        """Events, attempts and output lines after `cursor`, at most `limit` of each."""

        def op(conn: sqlite3.Connection) -> FeedPage:
            # One snapshot: an attempt is never seen without the event it delivered.
            conn.execute(sql.BEGIN_READ)
            try:
                events = conn.execute(sql.FEED_EVENTS, (cursor.events, limit)).fetchall()
                attempts = conn.execute(sql.FEED_ATTEMPTS, (cursor.attempts, limit)).fetchall()
                outputs = conn.execute(sql.FEED_OUTPUTS, (cursor.outputs, limit)).fetchall()
            finally:
                conn.execute(sql.END_READ)
            return FeedPage(
                events=[rows.feed_event(r, from_micros) for r in events],
                attempts=[rows.feed_attempt(r, parse_db) for r in attempts],
                outputs=[rows.feed_output(r, parse_db) for r in outputs],
            )

        return await self.engine.read(op)
