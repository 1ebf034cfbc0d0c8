"""The delivery side of the PostgreSQL Store: claims with SKIP LOCKED and leases, batched
completions, queries, replays, and the state several instances share (circuits, leases)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from relay.models import Attempt, Delivery, ForwarderCounts
from relay.store.base import Claimed, Completion, DeliveryQuery, EventRow, NewDelivery
from relay.store.cluster_base import CircuitChange, CircuitSnapshot
from relay.store.postgres import sql as sql
from relay.store.postgres.batch import Batcher, Outcome
from relay.store.postgres.engine import Conn, PgEngine
from relay.store.postgres.rows import attempt, delivery
from relay.store.rows import as_is, claimed, event_row


def _count(tag: str) -> int:
    """The row count of a status tag such as "UPDATE 3"."""
    return int(tag.rsplit(" ", 1)[-1])


def _snapshot(row: Any) -> CircuitSnapshot:
    cooldown = row["cooldown_ms"]
    return CircuitSnapshot(
        failures=row["failures"],
        opened_until=row["opened_until"],
        cooldown=timedelta(milliseconds=cooldown) if cooldown is not None else None,
    )


def _completion_columns(completions: list[Completion]) -> list[list[Any]]:
    # The state one deployment's deliveries share is written once per (deployment,
    # forwarder) and batch: the last completion's wins, as if written one by one.
    last_shared: dict[tuple[str, str], int] = {}
    for i, c in enumerate(completions):
        if c.shared and c.deployment_id:
            last_shared[(c.deployment_id, c.forwarder)] = i
    rows = []
    for i, c in enumerate(completions):
        a = c.attempt
        shared_key = (c.deployment_id or "", c.forwarder)
        rows.append(
            (
                c.delivery_id,
                c.status,
                c.next_attempt_at or c.finished_at,
                json.dumps(c.state),
                c.error,
                c.status_code,
                c.finished_at,
                a.number,
                a.started_at,
                a.duration_ms,
                a.status_code,
                a.outcome,
                a.error,
                a.response_excerpt,
                c.deployment_id,
                c.forwarder,
                json.dumps(c.shared) if last_shared.get(shared_key) == i else None,
            )
        )
    return [list(column) for column in zip(*rows, strict=True)]


class PostgresOutbox:
    """Outbox operations; mixed into PostgresStore, which owns `engine`."""

    engine: PgEngine

    def _init_outbox(self) -> None:
        self._completions: Batcher[Completion] = Batcher(self._write_completions)

    async def _close_outbox(self) -> None:
        await self._completions.close()

    async def claim(
        self, forwarder: str, limit: int, now: datetime, lease_until: datetime, owner: str
    ) -> list[Claimed]:
        """Lease due deliveries of one forwarder, heads of their deployment's queue only;
        rows another instance is claiming at this very moment are skipped, not waited for."""
        rows = await self.engine.fetch(sql.CLAIM, forwarder, now, limit, lease_until, owner)
        return [claimed(r, as_is) for r in rows]

    async def complete(self, completion: Completion) -> None:
        """Write the attempt and the delivery's new state (batched with other completions)."""
        await self._completions.submit(completion)

    async def complete_many(self, completions: Sequence[Completion]) -> None:
        """Write several attempts and their deliveries' new state in one statement."""
        if completions:
            await self.engine.execute(sql.COMPLETE, *_completion_columns(list(completions)))

    async def _write_completions(self, completions: list[Completion]) -> list[Outcome]:
        await self.complete_many(completions)
        return [(True, None)] * len(completions)

    async def release_claims(self, owner: str) -> int:
        """Clear the leases of `owner` so that their deliveries can be claimed now."""
        e = self.engine
        row = await e.fetchrow(sql.RELEASE_OWNER, e.channel, e.instance, owner)
        return int(row["n"]) if row else 0

    async def next_due(self, after: datetime | None = None) -> datetime | None:
        """Earliest next_attempt_at of a pending delivery (later than `after`)."""
        if after is None:
            row = await self.engine.fetchrow(sql.NEXT_DUE)
        else:
            row = await self.engine.fetchrow(sql.NEXT_DUE_AFTER, after)
        value: datetime | None = row[0] if row else None
        return value

    async def list_deliveries(self, query: DeliveryQuery) -> list[Delivery]:
        """Search deliveries; a deployment's come with their attempts, oldest first."""
        text, params = sql.SELECT_DELIVERIES, list[Any]()
        for clause, value in (
            ("d.status = ", query.status),
            ("d.forwarder = ", query.forwarder),
            ("d.deployment_id = ", query.deployment_id),
            ("d.created_at >= ", query.since),
            ("d.created_at < ", query.until),
        ):
            if value is not None:
                params.append(value)
                text += f" AND {clause}${len(params)}"
        order = "d.event_seq, d.forwarder" if query.deployment_id else "d.created_at DESC, d.id"
        params.append(query.limit)
        text += f" ORDER BY {order} LIMIT ${len(params)}"

        async def op(conn: Conn) -> list[Delivery]:
            rows = await conn.fetch(text, *params)
            if query.deployment_id is None:
                return [delivery(r) for r in rows]
            logs = await _attempts(conn, [r["id"] for r in rows])
            return [delivery(r, logs.get(r["id"], [])) for r in rows]

        return await self.engine.run(op)

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        """One delivery with every attempt."""

        async def op(conn: Conn) -> Delivery | None:
            row = await conn.fetchrow(sql.SELECT_DELIVERIES + " AND d.id = $1", delivery_id)
            if row is None:
                return None
            logs = await _attempts(conn, [delivery_id])
            return delivery(row, logs.get(delivery_id, []))

        return await self.engine.run(op)

    async def retry_now(self, delivery_id: str, now: datetime) -> Delivery | None:
        """Make a delivery due now, whatever its status (a lease in force stays)."""
        e = self.engine
        row = await e.fetchrow(sql.RETRY_NOW, now, delivery_id, e.channel, e.instance)
        return await self.get_delivery(delivery_id) if row else None

    async def events_between(self, since: datetime, until: datetime) -> list[EventRow]:
        """Events recorded in [since, until)."""
        found = await self.engine.fetch(sql.EVENTS_BETWEEN, since, until)
        return [event_row(r, as_is) for r in found]

    async def add_deliveries(self, rows: list[tuple[EventRow, NewDelivery]]) -> int:
        """Insert outbox rows for recorded events (one statement)."""
        if not rows:
            return 0
        columns: list[list[Any]] = [[], [], [], [], [], []]
        for event, d in rows:
            values = (
                d.id,
                event.id,
                event.seq,
                event.deployment_id,
                d.forwarder,
                d.next_attempt_at,
            )
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        e = self.engine
        row = await e.fetchrow(sql.ADD_DELIVERIES, *columns, e.channel, e.instance)
        return int(row["n"]) if row else 0

    async def forwarder_counts(self, since: datetime) -> dict[str, ForwarderCounts]:
        """Counts by status, oldest pending, recent attempt outcomes, last error."""

        async def op(conn: Conn) -> dict[str, ForwarderCounts]:
            data: dict[str, dict[str, Any]] = {}
            for r in await conn.fetch(sql.COUNT_BY_STATUS):
                entry = data.setdefault(r["forwarder"], {})
                entry[r["status"]] = r["n"]
                if r["oldest"]:
                    entry["oldest_pending_at"] = r["oldest"]
            for r in await conn.fetch(sql.ATTEMPT_OUTCOMES, since):
                entry = data.setdefault(r["forwarder"], {})
                entry["attempts_24h"] = entry.get("attempts_24h", 0) + r["n"]
                if r["outcome"] in ("retry", "dead"):
                    entry["failures_24h"] = entry.get("failures_24h", 0) + r["n"]
            for r in await conn.fetch(sql.LAST_ERRORS):
                entry = data.setdefault(r["forwarder"], {})
                entry["last_error"], entry["last_error_at"] = r["last_error"], r["at"]
            return {name: ForwarderCounts(**values) for name, values in data.items()}

        return await self.engine.run(op)

    async def set_disabled(self, forwarder: str, reason: str | None) -> None:
        """Persist a forwarder's disabled flag (every instance reads it)."""
        await self.engine.execute(sql.UPSERT_FORWARDER_STATE, forwarder, reason)

    async def disabled_forwarders(self) -> dict[str, str]:
        """Forwarders disabled by a target (410) or an operator."""
        return {r[0]: r[1] for r in await self.engine.fetch(sql.DISABLED_FORWARDERS)}

    # -- several instances ----------------------------------------------------------------
    async def renew(self, owner: str, ids: Sequence[str], until: datetime) -> int:
        """Extend the leases `owner` still holds on pending deliveries `ids`."""
        if not ids:
            return 0
        return _count(await self.engine.execute(sql.RENEW, owner, list(ids), until))

    async def update_circuit(self, forwarder: str, change: CircuitChange) -> CircuitSnapshot:
        """Read (locking the row), change and write the forwarder's circuit state in one
        transaction: two instances failing at once both count."""

        async def op(conn: Conn) -> CircuitSnapshot:
            async with conn.transaction():
                await conn.execute(sql.ENSURE_FORWARDER_STATE, forwarder)
                new = change(_snapshot(await conn.fetchrow(sql.LOCK_CIRCUIT, forwarder)))
                cooldown = None
                if new.cooldown is not None:
                    cooldown = round(new.cooldown.total_seconds() * 1000)
                await conn.execute(
                    sql.UPDATE_CIRCUIT, forwarder, new.failures, new.opened_until, cooldown
                )
                return new

        return await self.engine.run(op)

    async def circuits(self) -> dict[str, CircuitSnapshot]:
        """Every forwarder's shared circuit state."""
        return {r["name"]: _snapshot(r) for r in await self.engine.fetch(sql.SELECT_CIRCUITS)}


async def _attempts(conn: Conn, ids: list[str]) -> dict[str, list[Attempt]]:
    """The attempts of deliveries `ids`, oldest first (one query for all of them)."""
    logs: dict[str, list[Attempt]] = {i: [] for i in ids}
    if ids:
        for r in await conn.fetch(sql.SELECT_ATTEMPTS, ids):
            logs[r["delivery_id"]].append(attempt(r))
    return logs
