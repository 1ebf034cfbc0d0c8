"""The PostgreSQL Store: several relay instances on one database (asyncpg, group commit)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from relay.errors import Conflict, IdempotencyConflict, StoreError
from relay.models import DeliverySummary, Deployment, Kind, Status
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
from relay.store.postgres import sql as sql
from relay.store.postgres.batch import Batcher, Outcome
from relay.store.postgres.dashboard import PostgresDashboard
from relay.store.postgres.dialects import PostgresDialects
from relay.store.postgres.engine import Conn, PgEngine, known_migrations
from relay.store.postgres.events import insert_events
from relay.store.postgres.feed import PostgresFeed
from relay.store.postgres.insights import PostgresInsights
from relay.store.postgres.lifecycle import PostgresLifecycle
from relay.store.postgres.outbox import PostgresOutbox
from relay.store.postgres.retention import PostgresRetention
from relay.store.postgres.rows import deployment, deployment_columns
from relay.timeutil import utcnow

IdemKey = tuple[str, str]

log = structlog.get_logger("relay.store")


def _token(row: asyncpg.Record) -> TokenRecord:
    return TokenRecord(
        id=row["id"],
        name=row["name"],
        token_hash=row["token_hash"],
        scopes=tuple(row["scopes"]),
        components=tuple(row["components"]),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


class PostgresStore(
    PostgresDialects,
    PostgresDashboard,
    PostgresFeed,
    PostgresRetention,
    PostgresInsights,
    PostgresLifecycle,
    PostgresOutbox,
):
    """Store backed by a PostgreSQL database that any number of relays may share."""

    def __init__(self, url: str, *, pool_min: int = 1, pool_max: int = 10) -> None:
        self.engine = PgEngine(url, pool_min=pool_min, pool_max=pool_max)
        self._records: Batcher[RecordCommand] = Batcher(self._write_records)
        self._init_outbox()

    async def open(self) -> None:
        """Connect, apply migrations (under an advisory lock), start listening.

        Leases found at start are left alone: they may belong to another instance that
        is alive and sending; a dead instance's leases simply expire.

        A relay started on a young database that already holds a backlog has the
        outbox's planner statistics gathered (see sql.ANALYZE_YOUNG_OUTBOX): claims took
        ten times as long without them (10 ms instead of 1 for 16 rows of 2,000)."""
        await self.engine.open()
        try:
            await self.engine.execute(sql.ANALYZE_YOUNG_OUTBOX)
        except StoreError as exc:  # only slower claims until autovacuum's pass
            log.warning("store_analyze_failed", error=exc.message)

    async def close(self) -> None:
        """Finish queued writes, then close every connection."""
        await self._records.close()
        await self._close_outbox()
        await self.engine.close()

    async def ping(self) -> None:
        """Raise StoreError unless the database answers and every migration is applied."""
        newest = max(v for v, _, _ in known_migrations())
        applied = await self.engine.run(lambda conn: conn.fetchval(sql.MAX_MIGRATION))
        if (applied or 0) < newest:
            raise StoreError("database migrations are not applied")

    def add_due_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback` when another instance commits deliveries that are due."""
        self.engine.due_listeners.append(callback)

    def add_commit_listener(self, callback: Callable[[], None]) -> None:
        """A PostgreSQL write is answered at its (durable) commit: the answer's wake-up
        covers it."""

    async def record(self, command: RecordCommand) -> RecordResult:
        """Write record, event, deliveries and idempotency key in one transaction, together
        with the other requests that arrived meanwhile (group commit)."""
        result: RecordResult = await self._records.submit(command)
        return result

    async def _write_records(self, commands: list[RecordCommand]) -> list[Outcome]:
        return await self.engine.run(lambda conn: self._record_many(conn, commands))

    async def _record_many(self, conn: Conn, commands: list[RecordCommand]) -> list[Outcome]:
        async with conn.transaction():
            known = await _claim_keys(conn, commands)
            results: list[Outcome] = []
            fresh: list[RecordCommand] = []
            for command in commands:
                outcome = _replay(command, known)
                if outcome is None:
                    fresh.append(command)
                    outcome = (True, RecordResult(answer=command.answer, replayed=False))
                results.append(outcome)
            if fresh:
                await self._insert(conn, fresh)
        return results

    async def _insert(self, conn: Conn, commands: list[RecordCommand]) -> None:
        components: dict[str, datetime] = {}
        for c in commands:
            components.setdefault(c.record.component, c.record.created_at)
        numbers = await conn.fetch(
            sql.INSERT_RECORDS,
            list(components),
            list(components.values()),
            *deployment_columns([c.record for c in commands]),
        )
        number_of = {r["id"]: r["seq"] for r in numbers}
        # Rollback facts are decided against the rows written before, including those of
        # earlier commands of this batch (the function takes them in order).
        won = [c.record.id for c in commands if _may_replace(c.record)]
        rollbacks = {r["id"] for r in await conn.fetch(sql.MARK_ROLLBACKS, won)} if won else set()
        for c in commands:
            c.event.data["is_rollback"] = c.record.id in rollbacks
            c.event.data["number"] = number_of[c.record.id]
        await insert_events(
            conn,
            self.engine,
            [(c.event, c.record.id, c.record.component, c.deliveries) for c in commands],
        )

    async def get_record(self, kind: Kind, component: str, record_id: str) -> Deployment | None:
        """One record with a summary of its deliveries."""

        async def op(conn: Conn) -> Deployment | None:
            row = await conn.fetchrow(sql.SELECT_DEPLOYMENT, record_id, kind, component)
            if row is None:
                return None
            summary = [
                DeliverySummary(forwarder=r[0], status=r[1], attempts=r[2])
                for r in await conn.fetch(sql.DELIVERY_SUMMARY, record_id)
            ]
            return deployment(row).model_copy(update={"deliveries": summary})

        return await self.engine.run(op)

    async def list_records(self, query: ListQuery) -> Page:
        """Newest first by (occurred_at, seq), filtered, one page."""
        text, params = _list_sql(query)
        rows = await self.engine.fetch(text, *params)
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        nxt = None
        if more and rows:
            nxt = Cursor(occurred_at=rows[-1]["occurred_at"], seq=rows[-1]["seq"])
        return Page(items=[deployment(r) for r in rows], next_cursor=nxt)

    async def list_components(self) -> list[ComponentRow]:
        """Components with their latest deployment per stage."""

        async def op(conn: Conn) -> list[ComponentRow]:
            latest: dict[str, list[Deployment]] = {}
            for row in await conn.fetch(sql.LATEST_PER_STAGE):
                latest.setdefault(row["component"], []).append(deployment(row))
            return [
                ComponentRow(
                    slug=r["slug"], created_at=r["created_at"], latest=latest.get(r[0], [])
                )
                for r in await conn.fetch(sql.LIST_COMPONENTS)
            ]

        return await self.engine.run(op)

    async def component_exists(self, slug: str) -> bool:
        """True when the component has a row."""
        return await self.engine.fetchrow(sql.COMPONENT_EXISTS, slug) is not None

    async def add_component(self, slug: str, created_at: datetime) -> bool:
        """Insert a component row unless it exists."""
        return await self.engine.execute(sql.INSERT_COMPONENT, slug, created_at) == "INSERT 0 1"

    async def add_token(self, token: TokenRecord) -> None:
        """Insert a token; Conflict when an active one has the same name."""
        try:
            await self.engine.execute(
                sql.INSERT_TOKEN,
                token.id,
                token.name,
                token.token_hash,
                list(token.scopes),
                list(token.components),
                token.created_at,
                token.revoked_at,
            )
        except StoreError as exc:
            if isinstance(exc.__cause__, asyncpg.UniqueViolationError):
                raise Conflict(f"an active token named {token.name!r} already exists") from exc
            raise

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        """The active token with this hash."""
        row = await self.engine.fetchrow(sql.FIND_TOKEN, token_hash)
        return _token(row) if row else None

    async def list_tokens(self) -> list[TokenRecord]:
        """All tokens, oldest first."""
        return [_token(r) for r in await self.engine.fetch(sql.LIST_TOKENS)]

    async def revoke_token(self, name: str) -> bool:
        """Mark the active token `name` revoked."""
        return await self.engine.execute(sql.REVOKE_TOKEN, utcnow(), name) != "UPDATE 0"


def _may_replace(record: Deployment) -> bool:
    """True when recording `record` may change which deployment is live."""
    return record.kind == "deployment" and record.status == Status.SUCCESS


def _list_sql(query: ListQuery) -> tuple[str, list[Any]]:
    text = sql.LIST_DEPLOYMENTS
    params: list[Any] = [query.kind, query.component]

    def add(clause: str, *values: Any) -> None:
        nonlocal text
        marks = [f"${len(params) + i + 1}" for i in range(len(values))]
        text += " AND " + clause.format(*marks)
        params.extend(values)

    for column in ("stage", "result", "status"):
        value = getattr(query, column)
        if value is not None:
            add(f"{column} = {{}}", value)
    if query.since is not None:
        add("occurred_at >= {}", query.since)
    if query.until is not None:
        add("occurred_at < {}", query.until)
    if query.after is not None:
        add("(occurred_at, seq) < ({}, {})", query.after.occurred_at, query.after.seq)
    text += f" ORDER BY occurred_at DESC, seq DESC LIMIT ${len(params) + 1}"
    params.append(query.limit + 1)
    return text, params


async def _claim_keys(conn: Conn, commands: list[RecordCommand]) -> dict[IdemKey, Any]:
    """Insert the batch's new idempotency keys (first use of each key wins); the
    (fingerprint, answer, owner) of every key the batch uses. `owner` is the command
    whose key was inserted now, None for a key that existed before."""
    first: dict[IdemKey, RecordCommand] = {}
    for c in commands:
        if c.idempotency is not None:
            first.setdefault((c.idempotency.scope, c.idempotency.key), c)
    if not first:
        return {}
    columns: list[list[Any]] = [[], [], [], [], [], [], []]
    for (scope, key), c in first.items():
        assert c.idempotency is not None
        values = (
            scope,
            key,
            c.idempotency.fingerprint,
            c.answer.status,
            json.dumps(c.answer.body),
            c.answer.location,
            c.record.created_at,
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    inserted = {(r[0], r[1]) for r in await conn.fetch(sql.INSERT_IDEMPOTENCY, *columns)}
    known: dict[IdemKey, Any] = {}
    for ident, c in first.items():
        if ident in inserted:
            assert c.idempotency is not None
            known[ident] = (c.idempotency.fingerprint, c.answer, c)
    taken = [k for k in first if k not in inserted]
    if taken:
        rows = await conn.fetch(
            sql.SELECT_IDEMPOTENCY, [k[0] for k in taken], [k[1] for k in taken]
        )
        for r in rows:
            answer = StoredAnswer(r["status"], json.loads(r["body"]), r["location"])
            known[(r["scope"], r["key"])] = (r["fingerprint"], answer, None)
    return known


def _replay(command: RecordCommand, known: dict[IdemKey, Any]) -> Outcome | None:
    """The answer of an idempotent repeat (or its conflict); None for a new request."""
    idem = command.idempotency
    if idem is None:
        return None
    found = known.get((idem.scope, idem.key))
    if found is None:  # used by a transaction that did not commit after all: try again
        return (False, StoreError("the request could not be recorded; send it again"))
    fingerprint, answer, owner = found
    if owner is command:
        return None
    if fingerprint != idem.fingerprint:
        return (
            False,
            IdempotencyConflict("this Idempotency-Key was already used with a different request"),
        )
    return (True, RecordResult(answer=answer, replayed=True))
