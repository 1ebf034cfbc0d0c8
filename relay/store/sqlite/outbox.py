"""The delivery side of the SQLite Store: claims, completions, queries, replays."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from relay.models import Attempt, Delivery, ForwarderCounts
from relay.store.base import Claimed, Completion, DeliveryQuery, EventRow, NewDelivery
from relay.store.leases import owner_gone
from relay.store.rows import claimed, event_row
from relay.store.sqlite import sql as sql
from relay.store.sqlite.compact import (
    from_micros,
    id_key,
    id_text,
    micros,
    optional_time,
    unpack_payload,
)
from relay.store.sqlite.engine import SqliteEngine
from relay.timeutil import format_db, parse_db, utcnow


def _delivery(row: sqlite3.Row, attempts: list[Attempt] | None = None) -> Delivery:
    data = dict(row)
    del data["seq"]
    for key in ("next_attempt_at", "created_at", "updated_at", "delivered_at"):
        data[key] = optional_time(data[key])
    if data["status"] != "pending":
        data["next_attempt_at"] = None
    return Delivery(**data, attempt_log=attempts)


def _stored(row: sqlite3.Row) -> dict[str, Any]:
    """A claim's row with its ids and payload as the API shows them."""
    data = dict(row)
    data["id"], data["event_id"] = id_text(row["id"]), id_text(row["event_id"])
    data["payload"] = unpack_payload(row["payload"])
    return data


def _attempts(conn: sqlite3.Connection, delivery_seq: int) -> list[Attempt]:
    return [
        Attempt(**{**dict(r), "started_at": parse_db(r["started_at"])})
        for r in conn.execute(sql.SELECT_ATTEMPTS, (delivery_seq,))
    ]


def _complete(conn: sqlite3.Connection, completions: Sequence[Completion]) -> None:
    attempts, updates, shared = [], [], []
    for c in completions:
        a, key = c.attempt, id_key(c.delivery_id)
        attempts.append(
            (
                key,
                a.number,
                format_db(a.started_at),
                a.duration_ms,
                a.status_code,
                a.outcome,
                a.error,
                a.response_excerpt,
            )
        )
        done = micros(c.finished_at)
        updates.append(
            (
                c.status,
                micros(c.next_attempt_at) if c.next_attempt_at else done,
                json.dumps(c.state) if c.state else None,
                c.error,
                c.status_code,
                done,
                done if c.status == "delivered" else None,
                key,
            )
        )
        if c.shared and c.deployment_id:
            shared.append((c.deployment_id, c.forwarder, json.dumps(c.shared)))
    conn.executemany(sql.INSERT_ATTEMPT, attempts)
    conn.executemany(sql.COMPLETE_DELIVERY, updates)
    # In completion order: a later event's shared state wins, as if written one by one.
    conn.executemany(sql.UPSERT_SHARED, shared)


def _read_delivery(conn: sqlite3.Connection, delivery_id: str) -> Delivery | None:
    key = id_key(delivery_id)
    row = conn.execute(sql.SELECT_DELIVERIES + " AND d.id = ?", (key,)).fetchone()
    return _delivery(row, _attempts(conn, row["seq"])) if row else None


class SqliteOutbox:
    """Outbox operations; mixed into SqliteStore, which owns `engine`."""

    engine: SqliteEngine

    async def claim(
        self, forwarder: str, limit: int, now: datetime, lease_until: datetime, owner: str
    ) -> list[Claimed]:
        """Lease due deliveries of one forwarder, heads of their deployment's queue only."""
        stamp, lease = micros(now), micros(lease_until)

        def op(conn: sqlite3.Connection) -> list[Claimed]:
            rows = conn.execute(sql.CLAIM_CANDIDATES, (forwarder, stamp, stamp, limit)).fetchall()
            conn.executemany(sql.LEASE, [(lease, owner, r["seq"]) for r in rows])
            return [claimed(_stored(r), from_micros) for r in rows]

        return await self.engine.write(op, durable=False)

    async def complete(self, completion: Completion) -> None:
        """Write the attempt and the delivery's new state in one transaction."""
        # Losing an outcome to a power cut only means sending again (at-least-once).
        await self.engine.write(lambda conn: _complete(conn, [completion]), durable=False)

    async def complete_many(self, completions: Sequence[Completion]) -> None:
        """Write several attempts and their deliveries' new state in one transaction."""
        # As for `complete`: a lost outcome only means sending again.
        await self.engine.write(lambda conn: _complete(conn, completions), durable=False)

    async def release_claims(self, owner: str) -> int:
        """Clear the leases of `owner` so that its deliveries can be claimed again."""
        # Lease bookkeeping: lost to a power cut, the leases only run out instead.
        return await self.engine.write(
            lambda conn: conn.execute(sql.RELEASE_OWNER, (owner,)).rowcount, durable=False
        )

    async def release_stale_claims(self) -> int:
        """Free the leases of owners that no longer run (see relay.store.leases)."""

        def op(conn: sqlite3.Connection) -> int:
            owners = [row[0] for row in conn.execute(sql.LEASE_OWNERS)]
            gone = [(owner,) for owner in owners if owner_gone(owner)]
            return conn.executemany(sql.RELEASE_OWNER, gone).rowcount if gone else 0

        # Lease bookkeeping, like claims: lost to a power cut, it is only done again.
        return await self.engine.write(op, durable=False)

    async def next_due(self, after: datetime | None = None) -> datetime | None:
        """Earliest next_attempt_at of a pending delivery (later than `after`)."""
        text, params = sql.NEXT_DUE, []
        if after is not None:
            text, params = sql.NEXT_DUE_AFTER, [micros(after)]
        value = await self.engine.read(lambda conn: conn.execute(text, params).fetchone()[0])
        return optional_time(value)

    async def list_deliveries(self, query: DeliveryQuery) -> list[Delivery]:
        """Search deliveries; a deployment's come with their attempts, oldest first."""
        text, params = sql.SELECT_DELIVERIES, list[object]()
        for condition, value in (
            ("d.status = ?", query.status),
            ("d.forwarder = ?", query.forwarder),
            (f"d.deployment_seq = {sql.DEPLOYMENT_SEQ}", query.deployment_id),
            ("d.created_at >= ?", query.since and micros(query.since)),
            ("d.created_at < ?", query.until and micros(query.until)),
        ):
            if value is not None:
                text += f" AND {condition}"
                params.append(value)
        # seq follows the order in which an event's deliveries were made
        order = "d.event_seq, d.forwarder" if query.deployment_id else "d.created_at DESC, d.seq"
        text += f" ORDER BY {order} LIMIT ?"
        params.append(query.limit)

        def op(conn: sqlite3.Connection) -> list[Delivery]:
            rows = conn.execute(text, params).fetchall()
            with_log = query.deployment_id is not None
            return [_delivery(r, _attempts(conn, r["seq"]) if with_log else None) for r in rows]

        return await self.engine.read(op)

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        """One delivery with every attempt."""
        return await self.engine.read(lambda conn: _read_delivery(conn, delivery_id))

    async def retry_now(self, delivery_id: str, now: datetime) -> Delivery | None:
        """Make a delivery due now, whatever its status (a lease in force stays); the
        delivery as this made it (the dispatcher, woken at the commit, may send it
        before the fsync that the answer waits for)."""
        stamp = micros(now)

        def op(conn: sqlite3.Connection) -> Delivery | None:
            if not conn.execute(sql.RETRY_NOW, (stamp, stamp, id_key(delivery_id))).rowcount:
                return None
            return _read_delivery(conn, delivery_id)

        return await self.engine.write(op)

    async def resume_due(self, forwarder: str, now: datetime) -> int:
        """Bring a forwarder's pending deliveries that wait for a retry forward to `now`."""
        stamp = micros(now)
        return await self.engine.write(
            lambda conn: conn.execute(sql.RESUME_DUE, (stamp, stamp, forwarder, stamp)).rowcount
        )

    async def events_between(self, since: datetime, until: datetime) -> list[EventRow]:
        """Events recorded in [since, until)."""

        def op(conn: sqlite3.Connection) -> list[EventRow]:
            rows = conn.execute(sql.EVENTS_BETWEEN, (micros(since), micros(until)))
            return [event_row(r, from_micros) for r in rows]

        return await self.engine.read(op)

    async def add_deliveries(self, rows: list[tuple[EventRow, NewDelivery]]) -> int:
        """Insert outbox rows for recorded events."""

        def op(conn: sqlite3.Connection) -> int:
            conn.executemany(
                sql.INSERT_REPLAY_DELIVERY,
                [
                    (
                        id_key(d.id),
                        e.seq,
                        e.deployment_id,
                        d.forwarder,
                        micros(d.next_attempt_at),
                        micros(d.next_attempt_at),
                        micros(d.next_attempt_at),
                    )
                    for e, d in rows
                ],
            )
            return len(rows)

        return await self.engine.write(op)

    async def forwarder_counts(self, since: datetime) -> dict[str, ForwarderCounts]:
        """Counts by status, oldest pending, recent attempt outcomes, last error."""

        def op(conn: sqlite3.Connection) -> dict[str, ForwarderCounts]:
            data: dict[str, dict[str, Any]] = {}
            for r in conn.execute(sql.COUNT_BY_STATUS):
                entry = data.setdefault(r["forwarder"], {})
                entry[r["status"]] = r["n"]
                if r["oldest"] is not None:
                    entry["oldest_pending_at"] = from_micros(r["oldest"])
            for r in conn.execute(sql.ATTEMPT_OUTCOMES, (format_db(since),)):
                entry = data.setdefault(r["forwarder"], {})
                entry["attempts_24h"] = entry.get("attempts_24h", 0) + r["n"]
                if r["outcome"] in ("retry", "dead"):
                    entry["failures_24h"] = entry.get("failures_24h", 0) + r["n"]
            for r in conn.execute(sql.LAST_ERRORS):
                entry = data.setdefault(r["forwarder"], {})
                entry["last_error"], entry["last_error_at"] = r["last_error"], from_micros(r["at"])
            return {name: ForwarderCounts(**values) for name, values in data.items()}

        return await self.engine.read(op)

    async def set_disabled(self, forwarder: str, reason: str | None) -> None:
        """Persist a forwarder's disabled flag."""
        stamp = format_db(utcnow())
        await self.engine.write(
            lambda conn: conn.execute(sql.UPSERT_FORWARDER_STATE, (forwarder, reason, stamp))
        )

    async def disabled_forwarders(self) -> dict[str, str]:
        """Forwarders disabled by a target (410) or an operator."""
        return await self.engine.read(
            lambda conn: {r[0]: r[1] for r in conn.execute(sql.DISABLED_FORWARDERS)}
        )
