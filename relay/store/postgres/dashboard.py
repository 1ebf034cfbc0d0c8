"""Dashboard sessions and batched delivery summaries on PostgreSQL (see dashboard_base.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from relay.models import DeliverySummary
from relay.store.base import EventRow
from relay.store.dashboard_base import MAX_SUMMARY_IDS, DeploymentDeliveries, SessionRecord
from relay.store.postgres.engine import PgEngine
from relay.store.rows import as_is, event_row

INSERT_SESSION = (
    "INSERT INTO sessions (session_hash, token_hash, created_at, expires_at) "
    "VALUES ($1, $2, $3, $4)"
)
FIND_SESSION = (
    "SELECT session_hash, token_hash, created_at, expires_at FROM sessions "
    "WHERE session_hash = $1 AND expires_at > $2"
)
DELETE_SESSION = "DELETE FROM sessions WHERE session_hash = $1"
DELETE_EXPIRED = "DELETE FROM sessions WHERE expires_at <= $1"
DEPLOYMENT_EVENTS = """
SELECT id, seq, type, deployment_id, created_at, payload FROM events
WHERE deployment_id = $1 ORDER BY seq
"""
DEPLOYMENT_COMPONENTS = "SELECT id, component FROM deployments WHERE id = ANY($1::text[])"
SUMMARIES = """
SELECT deployment_id, forwarder, status, attempts FROM deliveries
WHERE deployment_id = ANY($1::text[]) ORDER BY deployment_id, event_seq, forwarder
"""


def _count(status: str) -> int:
    # asyncpg answers a DELETE with its command tag, e.g. "DELETE 3".
    return int(status.rsplit(" ", 1)[-1])


class PostgresDashboard:
    """Sessions and summaries; mixed into PostgresStore."""

    engine: PgEngine

    async def add_session(self, session: SessionRecord) -> None:
        """Insert a session row."""
        await self.engine.execute(
            INSERT_SESSION,
            session.session_hash,
            session.token_hash,
            session.created_at,
            session.expires_at,
        )

    async def find_session(self, session_hash: str, now: datetime) -> SessionRecord | None:
        """The unexpired session with this hash."""
        row = await self.engine.fetchrow(FIND_SESSION, session_hash, now)
        if row is None:
            return None
        return SessionRecord(row[0], row[1], row[2], row[3])

    async def delete_session(self, session_hash: str) -> bool:
        """Delete one session row."""
        return _count(await self.engine.execute(DELETE_SESSION, session_hash)) > 0

    async def delete_expired_sessions(self, now: datetime) -> int:
        """Delete every expired session row."""
        return _count(await self.engine.execute(DELETE_EXPIRED, now))

    async def delivery_summaries(self, deployment_ids: Sequence[str]) -> list[DeploymentDeliveries]:
        """Two reads for all the deployments."""
        ids = list(dict.fromkeys(deployment_ids))[:MAX_SUMMARY_IDS]
        if not ids:
            return []
        found = {
            row[0]: DeploymentDeliveries(row[0], row[1], [])
            for row in await self.engine.fetch(DEPLOYMENT_COMPONENTS, ids)
        }
        for row in await self.engine.fetch(SUMMARIES, ids):
            if row[0] in found:
                found[row[0]].deliveries.append(
                    DeliverySummary(forwarder=row[1], status=row[2], attempts=row[3])
                )
        return [found[i] for i in ids if i in found]

    async def deployment_events(self, deployment_id: str) -> list[EventRow]:
        """The deployment's events by seq."""
        found = await self.engine.fetch(DEPLOYMENT_EVENTS, deployment_id)
        return [event_row(r, as_is) for r in found]
