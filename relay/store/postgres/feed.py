"""The live feed's reads on PostgreSQL: rows after a position, by stream (see feed_base.py).

Several instances number rows at once, but each stream's numbers are handed out under a
transaction lock held until commit (postgres_sql.feed_lock), so a reader never sees a
gap that a later commit fills, as on SQLite with its single writer.
"""

from __future__ import annotations

from relay.store import rows
from relay.store.feed_base import FeedCursor, FeedPage
from relay.store.postgres import sql as sql
from relay.store.postgres.engine import Conn, PgEngine


class PostgresFeed:
    """Feed reads; mixed into PostgresStore, which owns `engine`."""

    engine: PgEngine

    async def feed_position(self) -> FeedCursor:
        """The newest event seq, attempt id and output line seq."""
        row = await self.engine.fetchrow(sql.FEED_POSITION)
        assert row is not None
        return FeedCursor(events=row["events"], attempts=row["attempts"], outputs=row["outputs"])

    async def feed_after(self, cursor: FeedCursor, limit: int) -> FeedPage:
        """Events, attempts and output lines after `cursor`, at most `limit` of each."""

        async def op(conn: Conn) -> FeedPage:
            # One snapshot: an attempt is never seen without the event it delivered.
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                events = await conn.fetch(sql.FEED_EVENTS, cursor.events, limit)
                attempts = await conn.fetch(sql.FEED_ATTEMPTS, cursor.attempts, limit)
                outputs = await conn.fetch(sql.FEED_OUTPUTS, cursor.outputs, limit)
            return FeedPage(
                events=[rows.feed_event(r, rows.as_is) for r in events],
                attempts=[rows.feed_attempt(r, rows.as_is) for r in attempts],
                outputs=[rows.feed_output(r, rows.as_is) for r in outputs],
            )

        return await self.engine.run(op)
