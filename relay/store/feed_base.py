"""What the live feed reads from the store: durable rows in commit order, by stream.

The feed has one stream per kind of durable row it shows: recorded events (new
deployments, status changes), delivery attempts and appended output lines. Each
stream is read by its own monotonic sequence number, so that a position in the
whole feed is a `FeedCursor` (one number per stream), and "everything after this
position" is a query, not a memory.

A backend must never make a row visible with a seq lower than one already visible
in the same stream: SQLite's single writer guarantees it; a database whose
sequences commit out of order (PostgreSQL) must hold back rows above the oldest
transaction still in flight, or a reader would skip the late one for good.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from relay.models import Attempt


@dataclass(frozen=True)
class FeedCursor:
    """A position in the feed: the last seq seen in each stream (0 = before the first)."""

    events: int = 0
    attempts: int = 0
    outputs: int = 0


@dataclass(frozen=True)
class FeedEvent:
    """A recorded event (a row of `events`) as the feed reads it."""

    seq: int
    id: str
    type: str
    deployment_id: str | None
    component: str
    created_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True)
class FeedAttempt:
    """One delivery attempt with what it delivered (a row of `attempts`)."""

    seq: int
    delivery_id: str
    forwarder: str
    event_id: str
    event_type: str
    deployment_id: str | None
    component: str
    stage: str | None
    attempt: Attempt


@dataclass(frozen=True)
class FeedOutput:
    """Text appended to a deployment's output log (one row of `outputs`)."""

    seq: int
    deployment_id: str
    component: str
    stage: str | None
    created_at: datetime
    text: str


@dataclass(frozen=True)
class FeedPage:
    """Rows after a cursor, each stream in its own seq order, at most `limit` per stream."""

    events: list[FeedEvent] = field(default_factory=list)
    attempts: list[FeedAttempt] = field(default_factory=list)
    outputs: list[FeedOutput] = field(default_factory=list)


class FeedStore(Protocol):
    """The live feed's side of the Store."""

    async def feed_position(self) -> FeedCursor:
        """The newest seq of every stream (where a subscriber with no history starts)."""

    async def feed_after(self, cursor: FeedCursor, limit: int) -> FeedPage:
        """Up to `limit` rows of each stream with a seq above the cursor's, oldest first."""
