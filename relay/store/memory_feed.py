"""The live feed's reads on the in-memory store (same answers as sqlite_feed.py)."""

from __future__ import annotations

from relay.models import Attempt, Deployment
from relay.store.base import EventRow
from relay.store.feed_base import FeedAttempt, FeedCursor, FeedEvent, FeedOutput, FeedPage
from relay.store.memory_lifecycle import OutputRow
from relay.store.memory_outbox import Row


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

    An attempt's seq is its 1-based position in `attempt_log`, as `attempts.id` is
    in SQLite."""

    event_rows: list[EventRow]
    attempt_log: list[tuple[Row, Attempt]]
    outputs: list[OutputRow]
    records: dict[str, tuple[int, Deployment]]

    async def feed_position(self) -> FeedCursor:
        """The newest event seq, attempt number and output line seq."""
        last_event = max((e.seq for e in self.event_rows), default=0)
        return FeedCursor(
            events=last_event, attempts=len(self.attempt_log), outputs=len(self.outputs)
        )

    async def feed_after(self, cursor: FeedCursor, limit: int) -> FeedPage:
        """Events, attempts and output lines after `cursor`, at most `limit` of each."""
        events = sorted((e for e in self.event_rows if e.seq > cursor.events), key=lambda e: e.seq)
        start = min(cursor.attempts, len(self.attempt_log))
        attempts = [
            _attempt(start + i + 1, row, attempt)
            for i, (row, attempt) in enumerate(self.attempt_log[start : start + limit])
        ]
        outputs = [self._output(o) for o in self.outputs[cursor.outputs : cursor.outputs + limit]]
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
