"""An in-memory Store for unit tests: same behaviour, no durability."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from relay.errors import Conflict, IdempotencyConflict
from relay.models import Deployment, Kind
from relay.store.base import (
    ComponentRow,
    Cursor,
    EventRow,
    IdempotencyRequest,
    ListQuery,
    Page,
    RecordCommand,
    RecordResult,
    StoredAnswer,
    TokenRecord,
)
from relay.store.memory.cluster import MemoryCluster
from relay.store.memory.dashboard import MemoryDashboard
from relay.store.memory.dialects import MemoryDialects
from relay.store.memory.feed import MemoryFeed
from relay.store.memory.lifecycle import MemoryLifecycle
from relay.store.memory.outbox import MemoryOutbox, delivery_summary
from relay.store.memory.retention import MemoryRetention
from relay.timeutil import utcnow


class MemoryStore(
    MemoryDialects,
    MemoryDashboard,
    MemoryFeed,
    MemoryCluster,
    MemoryRetention,
    MemoryLifecycle,
    MemoryOutbox,
):
    """Keeps everything in dicts; for tests that need no I/O."""

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, tuple[int, Deployment]] = {}
        self.components: dict[str, datetime] = {}
        self.idempotency: dict[tuple[str, str], tuple[str, StoredAnswer]] = {}
        self.idempotency_at: dict[tuple[str, str], datetime] = {}
        self.tokens: list[TokenRecord] = []
        self._seq = 0

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def ping(self) -> None:
        """Always ready."""

    async def record(self, command: RecordCommand) -> RecordResult:
        """Record atomically (nothing can fail halfway in memory)."""
        idem = command.idempotency
        if idem is not None and (replay := self._replay(idem)) is not None:
            return replay
        self._seq += 1
        rec = command.record.model_copy(update={"number": self._seq})
        self.components.setdefault(rec.component, rec.created_at)
        self.records[rec.id] = (self._seq, rec)
        self.count_finished(None, rec)
        command.event.data["is_rollback"] = self.decide_rollback(rec)
        command.event.data["number"] = self._seq
        event = EventRow(
            id=command.event.id,
            seq=self._seq,
            type=command.event.type,
            deployment_id=rec.id,
            created_at=command.event.created_at,
            payload=command.event.data,
        )
        self.event_rows.append(event)
        await self.add_deliveries([(event, d) for d in command.deliveries])
        if idem is not None:
            self.idempotency[(idem.scope, idem.key)] = (idem.fingerprint, command.answer)
            self.idempotency_at[(idem.scope, idem.key)] = rec.created_at
        return RecordResult(answer=command.answer, replayed=False)

    def _replay(self, idem: IdempotencyRequest) -> RecordResult | None:
        found = self.idempotency.get((idem.scope, idem.key))
        if found is None:
            return None
        fingerprint, answer = found
        if fingerprint != idem.fingerprint:
            raise IdempotencyConflict(
                "this Idempotency-Key was already used with a different request"
            )
        return RecordResult(answer=answer, replayed=True)

    async def get_record(self, kind: Kind, component: str, record_id: str) -> Deployment | None:
        """The record if kind and component match."""
        found = self.records.get(record_id)
        if found is None or found[1].kind != kind or found[1].component != component:
            return None
        summary = delivery_summary(self.rows.values(), record_id)
        return found[1].model_copy(update={"deliveries": summary})

    async def list_records(self, query: ListQuery) -> Page:
        """Filter and sort in Python."""
        rows = [
            (seq, d)
            for seq, d in self.records.values()
            if d.kind == query.kind and d.component == query.component and _matches(d, query)
        ]
        rows.sort(key=lambda r: (r[1].occurred_at, r[0]), reverse=True)
        if query.after is not None:
            after = (query.after.occurred_at, query.after.seq)
            rows = [r for r in rows if (r[1].occurred_at, r[0]) < after]
        page = rows[: query.limit]
        nxt = None
        if len(rows) > query.limit and page:
            seq, last = page[-1]
            nxt = Cursor(occurred_at=last.occurred_at, seq=seq)
        return Page(items=[d for _, d in page], next_cursor=nxt)

    async def list_components(self) -> list[ComponentRow]:
        """Latest deployment per (component, stage)."""
        latest: dict[tuple[str, str | None], tuple[datetime, int, Deployment]] = {}
        for seq, d in self.records.values():
            if d.kind != "deployment":
                continue
            key = (d.component, d.stage)
            if key not in latest or (d.occurred_at, seq) > latest[key][:2]:
                latest[key] = (d.occurred_at, seq, d)
        return [
            ComponentRow(
                slug=slug,
                created_at=created,
                latest=[
                    v[2]
                    for k, v in sorted(latest.items(), key=lambda kv: kv[0][1] or "")
                    if k[0] == slug
                ],
            )
            for slug, created in sorted(self.components.items())
        ]

    async def component_exists(self, slug: str) -> bool:
        """True when a record of that component exists."""
        return slug in self.components

    async def add_component(self, slug: str, created_at: datetime) -> bool:
        """Register a component unless it exists."""
        if slug in self.components:
            return False
        self.components[slug] = created_at
        return True

    async def add_token(self, token: TokenRecord) -> None:
        """Append a token; Conflict on an active duplicate name."""
        if any(t.name == token.name and t.revoked_at is None for t in self.tokens):
            raise Conflict(f"an active token named {token.name!r} already exists")
        self.tokens.append(token)

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        """Active token by hash."""
        return next(
            (t for t in self.tokens if t.token_hash == token_hash and t.revoked_at is None), None
        )

    async def list_tokens(self) -> list[TokenRecord]:
        """All tokens."""
        return list(self.tokens)

    async def revoke_token(self, name: str) -> bool:
        """Revoke by name."""
        for i, t in enumerate(self.tokens):
            if t.name == name and t.revoked_at is None:
                self.tokens[i] = replace(t, revoked_at=utcnow())
                return True
        return False


def _matches(d: Deployment, q: ListQuery) -> bool:
    occurred = d.occurred_at
    return (
        (q.stage is None or d.stage == q.stage)
        and (q.result is None or d.result == q.result)
        and (q.status is None or d.status.value == q.status)
        and (q.since is None or occurred >= q.since)
        and (q.until is None or occurred < q.until)
    )
