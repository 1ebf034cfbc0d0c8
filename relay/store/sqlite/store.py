"""The SQLite Store: embedded, zero set-up, durable with WAL and group commit."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from relay.errors import Conflict, IdempotencyConflict, StoreError
from relay.logging import render_json
from relay.models import DeliverySummary, Deployment, Kind
from relay.store.base import (
    ComponentRow,
    Cursor,
    ListQuery,
    Page,
    RecordCommand,
    RecordResult,
    StoredAnswer,
    TokenRecord,
)
from relay.store.sqlite import sql as sql
from relay.store.sqlite.cluster import SqliteCluster
from relay.store.sqlite.compact import id_key, micros, pack_payload
from relay.store.sqlite.dashboard import SqliteDashboard
from relay.store.sqlite.dialects import SqliteDialects
from relay.store.sqlite.engine import SqliteEngine, known_migrations
from relay.store.sqlite.feed import SqliteFeed
from relay.store.sqlite.insights import SqliteInsights
from relay.store.sqlite.lifecycle import SqliteLifecycle
from relay.store.sqlite.outbox import SqliteOutbox
from relay.store.sqlite.releases import SqliteReleases
from relay.store.sqlite.retention import SqliteRetention
from relay.store.sqlite.rows import (
    db_time,
    decide_rollback,
    deployment_from_row,
    deployment_values,
)
from relay.store.sqlite.sync import DATA_SYNC
from relay.store.sqlite.watch import CommitWatcher
from relay.timeutil import format_db, parse_db, utcnow


def _token(row: sqlite3.Row) -> TokenRecord:
    return TokenRecord(
        id=row["id"],
        name=row["name"],
        token_hash=row["token_hash"],
        scopes=tuple(json.loads(row["scopes"])),
        components=tuple(json.loads(row["components"])),
        created_at=parse_db(row["created_at"]),
        revoked_at=parse_db(row["revoked_at"]) if row["revoked_at"] else None,
    )


def _cursor(row: sqlite3.Row) -> Cursor:
    return Cursor(occurred_at=parse_db(row["occurred_at"]), seq=row["seq"])


# Below this much free space a commit (its WAL frames, a checkpoint) is likely to fail.
MIN_FREE_BYTES = 1 << 20


def _free_bytes(db: Path) -> int:
    try:
        stat = os.statvfs(db.parent)
    except OSError:
        return MIN_FREE_BYTES  # unknown: the read check below decides
    return stat.f_bavail * stat.f_frsize


class SqliteStore(
    SqliteDialects,
    SqliteDashboard,
    SqliteFeed,
    SqliteCluster,
    SqliteRetention,
    SqliteInsights,
    SqliteLifecycle,
    SqliteReleases,
    SqliteOutbox,
):
    """Store backed by one SQLite file."""

    def __init__(self, path: str | Path, *, sync: Callable[[int], None] = DATA_SYNC) -> None:
        self.engine = SqliteEngine(Path(path), sync=sync)
        self.watcher = CommitWatcher(Path(path), lambda: self.engine.commits)

    async def open(self) -> None:
        """Open the file (created if missing), apply migrations, free stale leases.

        Several processes may share the file (`relay serve --no-dispatch` beside
        `relay worker`, a CLI command beside either): only the leases of processes that
        no longer run are freed here; the others are their owners' until they end."""
        await self.engine.open()
        await self.release_stale_claims()

    async def close(self) -> None:
        """Finish queued writes and close the file."""
        await self.watcher.close()
        await self.engine.close()

    async def ping(self) -> None:
        """Raise StoreError unless the file answers, every migration is applied and writes
        can succeed: not after a failed fsync, nor with the disk full (every write would
        answer 503, so a load balancer should send the requests elsewhere)."""
        if (broken := self.engine.sync_failure) is not None:
            raise broken
        if _free_bytes(self.engine.path) < MIN_FREE_BYTES:
            raise StoreError("the disk holding the database is full")

        def check(conn: sqlite3.Connection) -> int:
            return int(conn.execute(sql.MAX_MIGRATION).fetchone()[0] or 0)

        newest = max(v for v, _, _ in known_migrations())
        if await self.engine.read(check) < newest:
            raise StoreError("database migrations are not applied")

    async def record(self, command: RecordCommand) -> RecordResult:
        """Write record, event, deliveries and idempotency key in one transaction."""
        result: RecordResult = await self.engine.write_bulk(_record_many, command)
        return result

    async def get_record(self, kind: Kind, component: str, record_id: str) -> Deployment | None:
        """One record with a summary of its deliveries."""

        def op(conn: sqlite3.Connection) -> Deployment | None:
            row = conn.execute(sql.SELECT_DEPLOYMENT, (record_id, kind, component)).fetchone()
            if row is None:
                return None
            record = deployment_from_row(row)
            summary = [
                DeliverySummary(forwarder=r[0], status=r[1], attempts=r[2])
                for r in conn.execute(sql.DELIVERY_SUMMARY, (record_id,))
            ]
            return record.model_copy(update={"deliveries": summary})

        return await self.engine.read(op)

    async def list_records(self, query: ListQuery) -> Page:
        """Newest first by (occurred_at, seq), filtered, one page."""
        text, params = _list_sql(query)

        def op(conn: sqlite3.Connection) -> Page:
            rows = conn.execute(text, params).fetchall()
            more = len(rows) > query.limit
            rows = rows[: query.limit]
            nxt = _cursor(rows[-1]) if more and rows else None
            return Page(items=[deployment_from_row(r) for r in rows], next_cursor=nxt)

        return await self.engine.read(op)

    async def list_components(self) -> list[ComponentRow]:
        """Components with their latest deployment per stage."""

        def op(conn: sqlite3.Connection) -> list[ComponentRow]:
            latest: dict[str, list[Deployment]] = {}
            for row in conn.execute(sql.LATEST_PER_STAGE):
                latest.setdefault(row["component"], []).append(deployment_from_row(row))
            return [
                ComponentRow(
                    slug=r["slug"],
                    created_at=parse_db(r["created_at"]),
                    latest=latest.get(r["slug"], []),
                )
                for r in conn.execute(sql.LIST_COMPONENTS)
            ]

        return await self.engine.read(op)

    async def component_exists(self, slug: str) -> bool:
        """True when the component has a row."""
        return await self.engine.read(
            lambda conn: conn.execute(sql.COMPONENT_EXISTS, (slug,)).fetchone() is not None
        )

    async def add_component(self, slug: str, created_at: datetime) -> bool:
        """Insert a component row unless it exists."""
        stamp = format_db(created_at)
        return await self.engine.write(
            lambda conn: conn.execute(sql.INSERT_COMPONENT, (slug, stamp)).rowcount > 0
        )

    async def add_token(self, token: TokenRecord) -> None:
        """Insert a token; Conflict when an active one has the same name."""

        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    sql.INSERT_TOKEN,
                    (
                        token.id,
                        token.name,
                        token.token_hash,
                        json.dumps(list(token.scopes)),
                        json.dumps(list(token.components)),
                        format_db(token.created_at),
                        db_time(token.revoked_at),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"an active token named {token.name!r} already exists") from exc

        await self.engine.write(op)

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        """The active token with this hash."""

        def op(conn: sqlite3.Connection) -> TokenRecord | None:
            row = conn.execute(sql.FIND_TOKEN, (token_hash,)).fetchone()
            return _token(row) if row else None

        return await self.engine.read(op)

    async def list_tokens(self) -> list[TokenRecord]:
        """All tokens, oldest first."""
        return await self.engine.read(
            lambda conn: [_token(r) for r in conn.execute(sql.LIST_TOKENS)]
        )

    async def revoke_token(self, name: str) -> bool:
        """Mark the active token `name` revoked."""
        return await self.engine.write(
            lambda conn: conn.execute(sql.REVOKE_TOKEN, (format_db(utcnow()), name)).rowcount > 0
        )


def _list_sql(query: ListQuery) -> tuple[str, list[Any]]:
    text = sql.LIST_DEPLOYMENTS
    params: list[Any] = [query.kind, query.component]
    for column in ("stage", "result", "status"):
        value = getattr(query, column)
        if value is not None:
            text += f" AND {column} = ?"
            params.append(value)
    if query.since is not None:
        text += " AND occurred_at >= ?"
        params.append(format_db(query.since))
    if query.until is not None:
        text += " AND occurred_at < ?"
        params.append(format_db(query.until))
    if query.after is not None:
        text += " AND (occurred_at, seq) < (?, ?)"
        params += [format_db(query.after.occurred_at), query.after.seq]
    text += " ORDER BY occurred_at DESC, seq DESC LIMIT ?"
    params.append(query.limit + 1)
    return text, params


def _idempotency(
    conn: sqlite3.Connection, command: RecordCommand, batch: dict[tuple[str, str], Any]
) -> tuple[bool, Any] | None:
    """The answer of an idempotent repeat (or its conflict), None for a new request."""
    idem = command.idempotency
    if idem is None:
        return None
    key = (idem.scope, idem.key)
    found = batch.get(key)
    if found is None:
        row = conn.execute(sql.SELECT_IDEMPOTENCY, key).fetchone()
        if row is not None:
            found = (
                row["fingerprint"],
                StoredAnswer(row["status"], json.loads(row["body"]), row["location"]),
            )
    if found is None:
        batch[key] = (idem.fingerprint, command.answer)
        return None
    if found[0] != idem.fingerprint:
        return (
            False,
            IdempotencyConflict("this Idempotency-Key was already used with a different request"),
        )
    return (True, RecordResult(answer=found[1], replayed=True))


def _record_many(conn: sqlite3.Connection, commands: list[RecordCommand]) -> list[tuple[bool, Any]]:
    """Record many commands with one executemany per table (group commit's bulk step)."""
    seen: dict[tuple[str, str], Any] = {}
    results: list[tuple[bool, Any]] = []
    fresh: list[RecordCommand] = []
    for command in commands:
        answer = _idempotency(conn, command, seen)
        if answer is None:
            fresh.append(command)
            answer = (True, RecordResult(answer=command.answer, replayed=False))
        results.append(answer)
    if fresh:
        _insert(conn, fresh)
    return results


def _insert(conn: sqlite3.Connection, commands: list[RecordCommand]) -> None:
    row = conn.execute(sql.LAST_EVENT_SEQ).fetchone()
    seq = int(row[0]) if row else 0
    components: dict[str, str] = {}
    events: list[tuple[Any, ...]] = []
    deliveries: list[tuple[Any, ...]] = []
    keys: list[tuple[Any, ...]] = []
    for command in commands:
        components.setdefault(command.record.component, format_db(command.record.created_at))
    conn.executemany(sql.INSERT_COMPONENT, list(components.items()))
    for command in commands:
        record, event = command.record, command.event
        # One row at a time: a rollback is decided against the rows written before it,
        # including those of earlier commands of this batch.
        inserted = conn.execute(sql.INSERT_DEPLOYMENT, deployment_values(record))
        # The event says what the row says (set both ways: a failed bulk try is re-run).
        event.data["number"] = inserted.lastrowid
        event.data["is_rollback"] = decide_rollback(conn, record)
        seq += 1
        created = format_db(record.created_at)
        created_us = micros(record.created_at)
        events.append(
            (
                seq,
                id_key(event.id),
                event.type,
                inserted.lastrowid,
                record.component,
                micros(event.created_at),
                pack_payload(render_json(event.data)),
            )
        )
        deliveries += [
            (
                id_key(d.id),
                seq,
                inserted.lastrowid,
                d.forwarder,
                micros(d.next_attempt_at),
                created_us,
                created_us,
            )
            for d in command.deliveries
        ]
        if (idem := command.idempotency) is not None:
            answer = command.answer
            keys.append(
                (
                    idem.scope,
                    idem.key,
                    idem.fingerprint,
                    answer.status,
                    json.dumps(answer.body),
                    answer.location,
                    created,
                )
            )
    conn.executemany(sql.INSERT_EVENT_WITH_SEQ, events)
    if deliveries:
        conn.executemany(sql.INSERT_DELIVERY, deliveries)
    if keys:
        conn.executemany(sql.INSERT_IDEMPOTENCY, keys)
