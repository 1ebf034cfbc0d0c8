"""Retention on the in-memory store: the rules of retention_base.py over its dicts and lists,
with the same answers as sqlite/retention.py."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from itertools import islice
from typing import Any

from relay.models import Attempt, Deployment, Status
from relay.store.base import EventRow, StoredAnswer
from relay.store.memory.lifecycle import OutputRow
from relay.store.memory.outbox import Row
from relay.store.retention_base import PruneResult, RetentionPolicy


class MemoryRetention:
    """Pruning; mixed into MemoryStore."""

    rows: dict[str, Row]
    event_rows: list[EventRow]
    attempt_log: list[tuple[int, Row, Attempt]]
    records: dict[str, tuple[int, Deployment]]
    shared: dict[tuple[str, str], dict[str, Any]]
    outputs: list[OutputRow]
    _release_links: dict[str, list[str]]
    idempotency: dict[tuple[str, str], tuple[str, StoredAnswer]]
    idempotency_at: dict[tuple[str, str], datetime]

    async def prune(self, policy: RetentionPolicy, now: datetime, batch_size: int) -> PruneResult:
        """One batch of each rule of `policy` (see retention_base.py)."""
        total = PruneResult()
        for kind, rule in (
            ("attempts", self._prune_attempts),
            ("deliveries", self._prune_deliveries),
            ("events", self._prune_events),
            ("deployments", self._prune_deployments),
            ("idempotency_keys", self._prune_keys),
        ):
            cutoff = policy.cutoff(kind, now)
            if cutoff is not None:
                total += rule(cutoff, batch_size)
        return total

    def _drop_attempts(self, doomed: Iterable[Attempt]) -> int:
        gone = {id(a) for a in doomed}
        if gone:
            for row in self.rows.values():
                row.attempts = [a for a in row.attempts if id(a) not in gone]
            self.attempt_log = [item for item in self.attempt_log if id(item[2]) not in gone]
        return len(gone)

    def _drop_deliveries(self, doomed: list[Row]) -> PruneResult:
        attempts = self._drop_attempts(a for row in doomed for a in row.attempts)
        for row in doomed:
            del self.rows[row.id]
        return PruneResult(attempts=attempts, deliveries=len(doomed))

    def _prune_attempts(self, cutoff: datetime, limit: int) -> PruneResult:
        old = (
            a
            for row in self.rows.values()
            if row.status != "pending"
            for a in row.attempts
            if a.started_at < cutoff
        )
        return PruneResult(attempts=self._drop_attempts(list(islice(old, limit))))

    def _prune_deliveries(self, cutoff: datetime, limit: int) -> PruneResult:
        old = (
            row
            for row in self.rows.values()
            if row.status != "pending" and (row.updated_at or row.created_at) < cutoff
        )
        return self._drop_deliveries(list(islice(old, limit)))

    def _pending_events(self) -> set[str]:
        return {row.event.id for row in self.rows.values() if row.status == "pending"}

    def _prune_events(self, cutoff: datetime, limit: int) -> PruneResult:
        pending = self._pending_events()
        old = (e for e in self.event_rows if e.created_at < cutoff and e.id not in pending)
        doomed = {e.id for e in islice(old, limit)}
        result = self._drop_deliveries([r for r in self.rows.values() if r.event.id in doomed])
        self.event_rows = [e for e in self.event_rows if e.id not in doomed]
        return result + PruneResult(events=len(doomed))

    def _kept_deployment(self, seq: int, d: Deployment) -> bool:
        """The latest record of its component, kind and stage, or the live deployment."""
        mark = (d.occurred_at, seq)

        def newer(success_only: bool) -> bool:
            return any(
                o.component == d.component
                and o.kind == d.kind
                and o.stage == d.stage
                and (not success_only or o.status == Status.SUCCESS)
                and (o.occurred_at, s) > mark
                for s, o in self.records.values()
            )

        live_candidate = d.kind == "deployment" and d.status == Status.SUCCESS
        return not newer(False) or (live_candidate and not newer(True))

    def _prune_deployments(self, cutoff: datetime, limit: int) -> PruneResult:
        busy = {r.event.deployment_id for r in self.rows.values() if r.status == "pending"}
        old = (
            d.id
            for seq, d in self.records.values()
            if d.updated_at < cutoff and d.id not in busy and not self._kept_deployment(seq, d)
        )
        doomed = set(islice(old, limit))
        if not doomed:
            return PruneResult()
        result = self._drop_deliveries(
            [r for r in self.rows.values() if r.event.deployment_id in doomed]
        )
        events = [e for e in self.event_rows if e.deployment_id in doomed]
        self.event_rows = [e for e in self.event_rows if e.deployment_id not in doomed]
        lines = [o for o in self.outputs if o.deployment_id in doomed]
        self.outputs = [o for o in self.outputs if o.deployment_id not in doomed]
        self.shared = {k: v for k, v in self.shared.items() if k[0] not in doomed}
        for links in self._release_links.values():
            links[:] = [i for i in links if i not in doomed]
        for deployment_id in doomed:
            del self.records[deployment_id]
        return result + PruneResult(events=len(events), outputs=len(lines), deployments=len(doomed))

    def _prune_keys(self, cutoff: datetime, limit: int) -> PruneResult:
        old = [k for k, at in self.idempotency_at.items() if at < cutoff][:limit]
        for key in old:
            del self.idempotency[key]
            del self.idempotency_at[key]
        return PruneResult(idempotency_keys=len(old))
