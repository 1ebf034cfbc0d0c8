"""The live feed's reads on the in-memory store (same answers as sqlite/feed.py)."""

from __future__ import annotations

from itertools import islice

from relay.models import Attempt, Deployment
from relay.store.base import EventRow
from relay.store.feed_base import FeedAttempt, FeedCursor, FeedEvent, FeedOutput, FeedPage
from relay.store.memory.lifecycle import OutputRow
from relay.store.memory.outbox import Row


def _event(e: EventRow) -> FeedEvent:
    return FeedEvent(
        seq=e.seq,
        id=e.id,
        type=e.type,
        deployment_id=e.deployment_id,
        component=str(e.payload.get("component", "")),
        created_at=e.created_at,
        payload=e.payload,
    )


def _attempt(seq: int, row: Row, attempt: Attempt) -> FeedAttempt:
    stage = row.event.payload.get("stage")
    return FeedAttempt(
        seq=seq,
        delivery_id=row.id,
        forwarder=row.forwarder,
        event_id=row.event.id,
        event_type=row.event.type,
        deployment_id=row.event.deployment_id,
        component=row.component,
        stage=stage if isinstance(stage, str) else None,
        attempt=attempt,
    )


class MemoryFeed:
    """Feed reads over the memory store's lists; mixed into MemoryStore.

    Each list is in seq order (`attempt_log` holds each attempt's seq, as `attempts.id`
    in SQLite), with gaps where retention deleted rows."""

    event_rows: list[EventRow]
    attempt_log: list[tuple[int, Row, Attempt]]
    outputs: list[OutputRow]
    records: dict[str, tuple[int, Deployment]]

    async def feed_position(self) -> FeedCursor:
        """The newest event seq, attempt seq and output line seq still stored."""
        return FeedCursor(
            events=max((e.seq for e in self.event_rows), default=0),
            attempts=self.attempt_log[-1][0] if self.attempt_log else 0,
            outputs=self.outputs[-1].seq if self.outputs else 0,
        )

    async def feed_after(self, cursor: FeedCursor, limit: int) -> FeedPage:
        """Events, attempts and output lines after `cursor`, at most `limit` of each."""
        events = sorted((e for e in self.event_rows if e.seq > cursor.events), key=lambda e: e.seq)
        after = (item for item in self.attempt_log if item[0] > cursor.attempts)
        attempts = [_attempt(seq, row, attempt) for seq, row, attempt in islice(after, limit)]
        lines = (o for o in self.outputs if o.seq > cursor.outputs)
        outputs = [self._output(o) for o in islice(lines, limit)]
        return FeedPage(
            events=[_event(e) for e in events[:limit]], attempts=attempts, outputs=outputs
        )

    def _output(self, row: OutputRow) -> FeedOutput:
        _, deployment = self.records[row.deployment_id]
        return FeedOutput(
            seq=row.seq,
            deployment_id=row.deployment_id,
            component=deployment.component,
            stage=deployment.stage,
            created_at=row.created_at,
            text=row.text,
        )
