"""What the web dashboard asks of the store: sign-in sessions, and the per-target delivery
state of many deployments in one read, and the events (status history) of one.

A session is stored by the hash of its cookie value (never the value itself) with the
hash of the token it was opened with, so that revoking the token ends its sessions, and
deleting the row ends the session on every instance sharing the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from relay.models import DeliverySummary

if TYPE_CHECKING:  # base.py imports this module
    from relay.store.base import EventRow

# How many deployments one `delivery_summaries` call may name (ids of ~36 characters:
# 200 keep a GET within the 8 KiB request line aiohttp accepts).
MAX_SUMMARY_IDS = 200


@dataclass(frozen=True)
class SessionRecord:
    """A dashboard session as stored: hashes only."""

    session_hash: str
    token_hash: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class DeploymentDeliveries:
    """The delivery summaries of one deployment (one row per event and forwarder)."""

    deployment_id: str
    component: str
    deliveries: list[DeliverySummary]


class DashboardStore(Protocol):
    """Sessions, batched delivery summaries, one deployment's events."""

    async def add_session(self, session: SessionRecord) -> None:
        """Store a new session."""

    async def find_session(self, session_hash: str, now: datetime) -> SessionRecord | None:
        """The session with this hash unless it has expired by `now`."""

    async def delete_session(self, session_hash: str) -> bool:
        """End a session; False when there was none."""

    async def delete_expired_sessions(self, now: datetime) -> int:
        """Delete sessions that expired by `now`; how many."""

    async def delivery_summaries(self, deployment_ids: Sequence[str]) -> list[DeploymentDeliveries]:
        """For each existing deployment among `deployment_ids` (at most MAX_SUMMARY_IDS):
        its component and delivery summaries in event order, as `get_record` gives them."""

    async def deployment_events(self, deployment_id: str) -> list[EventRow]:
        """Every recorded event of one deployment, oldest first (its status history)."""
