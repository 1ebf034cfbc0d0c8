"""The delivery side of the in-memory Store (for unit tests of the dispatcher)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from relay.models import Attempt, Delivery, DeliveryStatus, DeliverySummary, ForwarderCounts
from relay.store.base import Claimed, Completion, DeliveryQuery, EventRow, NewDelivery


@dataclass
class Row:
    """A delivery as the memory store keeps it."""

    id: str
    event: EventRow
    component: str
    forwarder: str
    next_attempt_at: datetime
    created_at: datetime
    status: DeliveryStatus = "pending"
    attempts: list[Attempt] = field(default_factory=list)
    # Attempts ever made: retention may delete old ones from `attempts`, not from the count.
    tries: int = 0
    locked_until: datetime | None = None
    owner: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    last_error: str | None = None
    last_status_code: int | None = None
    updated_at: datetime | None = None
    delivered_at: datetime | None = None

    def view(self, with_log: bool) -> Delivery:
        """The API model of this row."""
        return Delivery(
            id=self.id,
            event_id=self.event.id,
            event_type=self.event.type,
            deployment_id=self.event.deployment_id,
            component=self.component,
            forwarder=self.forwarder,
            status=self.status,
            attempts=self.tries,
            next_attempt_at=self.next_attempt_at if self.status == "pending" else None,
            last_error=self.last_error,
            last_status_code=self.last_status_code,
            created_at=self.created_at,
            updated_at=self.updated_at or self.created_at,
            delivered_at=self.delivered_at,
            attempt_log=list(self.attempts) if with_log else None,
        )


def delivery_summary(rows: Iterable[Row], deployment_id: str) -> list[DeliverySummary]:
    """A deployment's deliveries as its record shows them: by event, then forwarder."""
    mine = sorted(
        (r for r in rows if r.event.deployment_id == deployment_id),
        key=lambda r: (r.event.seq, r.forwarder),
    )
    return [DeliverySummary(forwarder=r.forwarder, status=r.status, attempts=r.tries) for r in mine]


class MemoryOutbox:
    """Outbox operations over `self.rows`; mixed into MemoryStore."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.event_rows: list[EventRow] = []
        self.shared: dict[tuple[str, str], dict[str, Any]] = {}
        self.disabled: dict[str, str] = {}
        # Every attempt with its seq (as `attempts.id` in SQLite), in the order it was
        # recorded: the live feed reads it. Seqs are never reused, even once pruned.
        self.attempt_log: list[tuple[int, Row, Attempt]] = []
        self.attempt_seq = 0

    def _blocked(self, row: Row) -> bool:
        return any(
            other.status == "pending"
            and other.forwarder == row.forwarder
            and other.event.deployment_id == row.event.deployment_id
            and other.event.seq < row.event.seq
            for other in self.rows.values()
        )

    async def claim(
        self, forwarder: str, limit: int, now: datetime, lease_until: datetime, owner: str
    ) -> list[Claimed]:
        """Lease due, unblocked deliveries of one forwarder."""
        due = sorted(
            (
                r
                for r in self.rows.values()
                if r.forwarder == forwarder
                and r.status == "pending"
                and r.next_attempt_at <= now
                and (r.locked_until is None or r.locked_until < now)
                and not self._blocked(r)
            ),
            key=lambda r: (r.next_attempt_at, r.event.seq),
        )[:limit]
        out = []
        for r in due:
            r.locked_until, r.owner = lease_until, owner
            key = (r.event.deployment_id or "", r.forwarder)
            out.append(
                Claimed(
                    id=r.id,
                    forwarder=r.forwarder,
                    attempts=r.tries,
                    deployment_id=r.event.deployment_id,
                    event_id=r.event.id,
                    event_type=r.event.type,
                    event_created_at=r.event.created_at,
                    payload=r.event.payload,
                    state=dict(r.state),
                    shared=dict(self.shared.get(key, {})),
                )
            )
        return out

    async def complete(self, completion: Completion) -> None:
        """Apply an attempt's outcome."""
        r = self.rows[completion.delivery_id]
        r.attempts.append(completion.attempt)
        r.tries += 1
        self.attempt_seq += 1
        self.attempt_log.append((self.attempt_seq, r, completion.attempt))
        r.status = completion.status
        r.next_attempt_at = completion.next_attempt_at or completion.finished_at
        r.locked_until = r.owner = None
        r.state = dict(completion.state)
        r.last_error, r.last_status_code = completion.error, completion.status_code
        r.updated_at = completion.finished_at
        if completion.status == "delivered":
            r.delivered_at = completion.finished_at
        if completion.shared and completion.deployment_id:
            self.shared[(completion.deployment_id, completion.forwarder)] = dict(completion.shared)

    async def complete_many(self, completions: Sequence[Completion]) -> None:
        """Apply several outcomes; none when one of their deliveries is unknown."""
        missing = [c.delivery_id for c in completions if c.delivery_id not in self.rows]
        if missing:
            raise KeyError(missing[0])
        for completion in completions:
            await self.complete(completion)

    async def release_claims(self, owner: str) -> int:
        """Drop the leases of `owner`."""
        count = 0
        for r in self.rows.values():
            if r.owner == owner:
                r.locked_until = r.owner = None
                count += 1
        return count

    async def next_due(self, after: datetime | None = None) -> datetime | None:
        """Earliest pending next_attempt_at (later than `after`)."""
        times = [
            r.next_attempt_at
            for r in self.rows.values()
            if r.status == "pending" and (after is None or r.next_attempt_at > after)
        ]
        return min(times, default=None)

    async def list_deliveries(self, query: DeliveryQuery) -> list[Delivery]:
        """Filter rows."""
        rows = [
            r
            for r in self.rows.values()
            if query.status in (None, r.status)
            and query.forwarder in (None, r.forwarder)
            and query.deployment_id in (None, r.event.deployment_id)
            and (query.since is None or r.created_at >= query.since)
            and (query.until is None or r.created_at < query.until)
        ]
        if query.deployment_id:
            rows.sort(key=lambda r: (r.event.seq, r.forwarder))
        else:
            rows.sort(key=lambda r: r.created_at, reverse=True)
        return [r.view(query.deployment_id is not None) for r in rows[: query.limit]]

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        """One row with attempts."""
        row = self.rows.get(delivery_id)
        return row.view(True) if row else None

    async def retry_now(self, delivery_id: str, now: datetime) -> Delivery | None:
        """Make a row due now (a lease held by a send in flight stays)."""
        row = self.rows.get(delivery_id)
        if row is None:
            return None
        row.status, row.next_attempt_at = "pending", now
        return row.view(True)

    async def resume_due(self, forwarder: str, now: datetime) -> int:
        """Make a forwarder's pending rows that wait for a retry due now."""
        moved = 0
        for row in self.rows.values():
            if row.forwarder == forwarder and row.status == "pending" and row.next_attempt_at > now:
                row.next_attempt_at, moved = now, moved + 1
        return moved

    async def events_between(self, since: datetime, until: datetime) -> list[EventRow]:
        """Events in [since, until)."""
        return [e for e in self.event_rows if since <= e.created_at < until]

    async def add_deliveries(self, rows: list[tuple[EventRow, NewDelivery]]) -> int:
        """Insert rows for recorded events."""
        for event, d in rows:
            component = str(event.payload.get("component", ""))
            self.rows[d.id] = Row(
                d.id, event, component, d.forwarder, d.next_attempt_at, d.next_attempt_at
            )
        return len(rows)

    async def forwarder_counts(self, since: datetime) -> dict[str, ForwarderCounts]:
        """Counts per forwarder."""
        out: dict[str, ForwarderCounts] = {}
        for r in self.rows.values():
            c = out.setdefault(r.forwarder, ForwarderCounts())
            setattr(c, r.status, getattr(c, r.status) + 1)
            if r.status == "pending" and (
                c.oldest_pending_at is None or r.created_at < c.oldest_pending_at
            ):
                c.oldest_pending_at = r.created_at
            recent = [a for a in r.attempts if a.started_at >= since]
            c.attempts_24h += len(recent)
            c.failures_24h += sum(a.outcome in ("retry", "dead") for a in recent)
            changed = r.updated_at or r.created_at
            # A skip's reason says why there was nothing to send: not an error.
            failed = r.last_error and r.status != "skipped"
            if failed and (c.last_error_at is None or changed > c.last_error_at):
                c.last_error, c.last_error_at = r.last_error, changed
        return out

    async def set_disabled(self, forwarder: str, reason: str | None) -> None:
        """Flip the disabled flag."""
        if reason is None:
            self.disabled.pop(forwarder, None)
        else:
            self.disabled[forwarder] = reason

    async def disabled_forwarders(self) -> dict[str, str]:
        """Disabled forwarders."""
        return dict(self.disabled)
