"""The live feed's reads on SQLite: rows after a position, by stream (see feed_base.py).

Nothing is written for the feed: it reads the rows ingest and delivery write anyway
(`events.seq`, `attempts.id`, `outputs.seq`), so watching costs ingest nothing. One writer assigns
those numbers inside its transactions, so a reader never sees a gap that a later
commit fills.
"""

from __future__ import annotations

import json
import sqlite3

from relay.models import Attempt
from relay.store import sqlite_sql as sql
from relay.store.feed_base import FeedAttempt, FeedCursor, FeedEvent, FeedOutput, FeedPage
from relay.store.sqlite_engine import SqliteEngine
from relay.timeutil import parse_db


def _event(row: sqlite3.Row) -> FeedEvent:
    return FeedEvent(
        seq=row["seq"],
        id=row["id"],
        type=row["type"],
        deployment_id=row["deployment_id"],
        component=row["component"],
        created_at=parse_db(row["created_at"]),
        payload=json.loads(row["payload"]),
    )


def _attempt(row: sqlite3.Row) -> FeedAttempt:
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
            started_at=parse_db(row["started_at"]),
            duration_ms=row["duration_ms"],
            status_code=row["status_code"],
            outcome=row["outcome"],
            error=row["error"],
        ),
    )


def _output(row: sqlite3.Row) -> FeedOutput:
    return FeedOutput(
        seq=row["seq"],
        deployment_id=row["deployment_id"],
        component=row["component"],
        stage=row["stage"],
        created_at=parse_db(row["created_at"]),
        text=row["text"],
    )


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
                events=[_event(r) for r in events],
                attempts=[_attempt(r) for r in attempts],
                outputs=[_output(r) for r in outputs],
            )

        return await self.engine.read(op)
