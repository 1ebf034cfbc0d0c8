"""Dashboard sessions and batched delivery summaries on SQLite (see dashboard_base.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from relay.models import DeliverySummary
from relay.store.base import EventRow
from relay.store.dashboard_base import MAX_SUMMARY_IDS, DeploymentDeliveries, SessionRecord
from relay.store.rows import event_row
from relay.store.sqlite import sql as sql
from relay.store.sqlite.compact import from_micros
from relay.store.sqlite.engine import SqliteEngine
from relay.timeutil import format_db, parse_db

INSERT_SESSION = (
    "INSERT INTO sessions (session_hash, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?)"
)
FIND_SESSION = (
    "SELECT session_hash, token_hash, created_at, expires_at FROM sessions "
    "WHERE session_hash = ? AND expires_at > ?"
)
DELETE_SESSION = "DELETE FROM sessions WHERE session_hash = ?"
DELETE_EXPIRED = "DELETE FROM sessions WHERE expires_at <= ?"
SUMMARIES = """
SELECT p.id, d.forwarder, d.status, d.attempts FROM deployments p
JOIN deliveries d ON d.deployment_seq = p.seq
WHERE p.id IN ({marks}) ORDER BY p.id, d.event_seq, d.forwarder
"""
DEPLOYMENT_EVENTS = f"""
SELECT relay_id_text(id) AS id, seq, type, ? AS deployment_id, created_at,
       relay_payload(payload) AS payload
FROM events WHERE deployment_seq = {sql.DEPLOYMENT_SEQ} ORDER BY seq
"""
DEPLOYMENT_COMPONENTS = "SELECT id, component FROM deployments WHERE id IN ({marks})"


class SqliteDashboard:
    """Sessions and summaries; mixed into SqliteStore."""

    engine: SqliteEngine

    async def add_session(self, session: SessionRecord) -> None:
        """Insert a session row."""
        values = (
            session.session_hash,
            session.token_hash,
            format_db(session.created_at),
            format_db(session.expires_at),
        )
        await self.engine.write(lambda conn: conn.execute(INSERT_SESSION, values))

    async def find_session(self, session_hash: str, now: datetime) -> SessionRecord | None:
        """The unexpired session with this hash."""

        def op(conn: sqlite3.Connection) -> SessionRecord | None:
            row = conn.execute(FIND_SESSION, (session_hash, format_db(now))).fetchone()
            if row is None:
                return None
            return SessionRecord(row[0], row[1], parse_db(row[2]), parse_db(row[3]))

        return await self.engine.read(op)

    async def delete_session(self, session_hash: str) -> bool:
        """Delete one session row."""
        return await self.engine.write(
            lambda conn: conn.execute(DELETE_SESSION, (session_hash,)).rowcount > 0
        )

    async def delete_expired_sessions(self, now: datetime) -> int:
        """Delete every expired session row (not worth an fsync of its own)."""
        stamp = format_db(now)
        return await self.engine.write(
            lambda conn: conn.execute(DELETE_EXPIRED, (stamp,)).rowcount, durable=False
        )

    async def delivery_summaries(self, deployment_ids: Sequence[str]) -> list[DeploymentDeliveries]:
        """One read for all the deployments."""
        ids = list(dict.fromkeys(deployment_ids))[:MAX_SUMMARY_IDS]
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))

        def op(conn: sqlite3.Connection) -> list[DeploymentDeliveries]:
            found = {
                row[0]: DeploymentDeliveries(row[0], row[1], [])
                for row in conn.execute(DEPLOYMENT_COMPONENTS.format(marks=marks), ids)
            }
            for row in conn.execute(SUMMARIES.format(marks=marks), ids):
                if row[0] in found:
                    found[row[0]].deliveries.append(
                        DeliverySummary(forwarder=row[1], status=row[2], attempts=row[3])
                    )
            return [found[i] for i in ids if i in found]

        return await self.engine.read(op)

    async def deployment_events(self, deployment_id: str) -> list[EventRow]:
        """The deployment's events by seq."""
        return await self.engine.read(
            lambda conn: [
                event_row(r, from_micros)
                for r in conn.execute(DEPLOYMENT_EVENTS, (deployment_id, deployment_id))
            ]
        )
