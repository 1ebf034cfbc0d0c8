"""Dashboard sessions and batched delivery summaries in memory (see dashboard_base.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from relay.models import Deployment
from relay.store.base import EventRow
from relay.store.dashboard_base import MAX_SUMMARY_IDS, DeploymentDeliveries, SessionRecord
from relay.store.memory.outbox import Row, delivery_summary


class MemoryDashboard:
    """Sessions and summaries; mixed into MemoryStore."""

    rows: dict[str, Row]
    event_rows: list[EventRow]
    records: dict[str, tuple[int, Deployment]]

    def __init__(self) -> None:
        super().__init__()
        self.sessions: dict[str, SessionRecord] = {}

    async def add_session(self, session: SessionRecord) -> None:
        """Keep a session."""
        self.sessions[session.session_hash] = session

    async def find_session(self, session_hash: str, now: datetime) -> SessionRecord | None:
        """The unexpired session with this hash."""
        found = self.sessions.get(session_hash)
        return found if found is not None and found.expires_at > now else None

    async def delete_session(self, session_hash: str) -> bool:
        """Forget one session."""
        return self.sessions.pop(session_hash, None) is not None

    async def delete_expired_sessions(self, now: datetime) -> int:
        """Forget every expired session."""
        old = [h for h, s in self.sessions.items() if s.expires_at <= now]
        for session_hash in old:
            del self.sessions[session_hash]
        return len(old)

    async def delivery_summaries(self, deployment_ids: Sequence[str]) -> list[DeploymentDeliveries]:
        """Summaries as get_record shows them, for each known deployment."""
        out = []
        for deployment_id in list(dict.fromkeys(deployment_ids))[:MAX_SUMMARY_IDS]:
            found = self.records.get(deployment_id)
            if found is None:
                continue
            summary = delivery_summary(self.rows.values(), deployment_id)
            out.append(DeploymentDeliveries(deployment_id, found[1].component, summary))
        return out

    async def deployment_events(self, deployment_id: str) -> list[EventRow]:
        """The deployment's events by seq."""
        return sorted(
            (e for e in self.event_rows if e.deployment_id == deployment_id), key=lambda e: e.seq
        )
