"""The live feed's reads on PostgreSQL: rows after a position, by stream (see feed_base.py).

Several instances number rows at once, but each stream's numbers are handed out under a
transaction lock held until commit (postgres_sql.feed_lock), so a reader never sees a
gap that a later commit fills, as on SQLite with its single writer.
"""

from __future__ import annotations

import json

from relay.models import Attempt
from relay.store import postgres_sql as sql
from relay.store.feed_base import FeedAttempt, FeedCursor, FeedEvent, FeedOutput, FeedPage
from relay.store.postgres_engine import Conn, PgEngine
from relay.store.postgres_rows import Row


def _event(row: Row) -> FeedEvent:
    return FeedEvent(
        seq=row["seq"],
        id=row["id"],
        type=row["type"],
        deployment_id=row["deployment_id"],
        component=row["component"],
        created_at=row["created_at"],
        payload=json.loads(row["payload"]),
    )


def _attempt(row: Row) -> FeedAttempt:
    return FeedAttempt(
        seq=row["seq"],
        delivery_id=row["delivery_id"],
        forwarder=row["forwarder"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        deployment_id=row["deployment_id"],
        component=row["component"],
        stage=row["stage"],
        attempt=Attempt(
            number=row["number"],
            started_at=row["started_at"],
            duration_ms=row["duration_ms"],
            status_code=row["status_code"],
            outcome=row["outcome"],
            error=row["error"],
        ),
    )


def _output(row: Row) -> FeedOutput:
    return FeedOutput(
        seq=row["seq"],
        deployment_id=row["deployment_id"],
        component=row["component"],
        stage=row["stage"],
        created_at=row["created_at"],
        text=row["text"],
    )


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
                events=[_event(r) for r in events],
                attempts=[_attempt(r) for r in attempts],
                outputs=[_output(r) for r in outputs],
            )

        return await self.engine.run(op)
