"""The lifecycle side of the SQLite Store: status changes, live deployments, output logs."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from relay.models import Deployment
from relay.store.base import NewDelivery, NewEvent
from relay.store.lifecycle_base import OutputTotals, TransitionCommand, output_bytes
from relay.store.sqlite import sql as sql
from relay.store.sqlite.compact import id_key, micros, pack_payload
from relay.store.sqlite.engine import SqliteEngine
from relay.store.sqlite.rows import db_time, decide_rollback, deployment_from_row
from relay.timeutil import format_db


def insert_event(
    conn: sqlite3.Connection,
    event: NewEvent,
    deployment_id: str | None,
    component: str,
    deliveries: list[NewDelivery],
) -> int:
    """Insert one event and its outbox rows; the event's seq."""
    deployment_seq = None
    if deployment_id is not None:
        deployment_seq = conn.execute(sql.SELECT_DEPLOYMENT_SEQ, (deployment_id,)).fetchone()[0]
    created = micros(event.created_at)
    cursor = conn.execute(
        sql.INSERT_EVENT,
        (
            id_key(event.id),
            event.type,
            deployment_seq,
            component,
            created,
            pack_payload(json.dumps(event.data, ensure_ascii=False)),
        ),
    )
    seq = cursor.lastrowid
    assert seq is not None
    conn.executemany(
        sql.INSERT_DELIVERY,
        [
            (
                id_key(d.id),
                seq,
                deployment_seq,
                d.forwarder,
                micros(d.next_attempt_at),
                created,
                created,
            )
            for d in deliveries
        ],
    )
    return seq


def _transition(conn: sqlite3.Connection, command: TransitionCommand) -> Deployment | None:
    r = command.record
    changed = conn.execute(
        sql.UPDATE_TRANSITION,
        (
            r.result,
            r.status.value,
            r.host,
            r.code_name,
            db_time(r.started_at),
            db_time(r.finished_at),
            r.commit_sha,
            r.branch,
            r.tag,
            json.dumps(r.meta_data, ensure_ascii=False),
            format_db(r.updated_at),
            format_db(r.occurred_at),
            db_time(r.committed_at),
            r.id,
            command.expected.value,
        ),
    ).rowcount
    if not changed:
        return None
    command.event.data["is_rollback"] = decide_rollback(conn, r)
    insert_event(conn, command.event, r.id, r.component, command.deliveries)
    row = conn.execute(sql.SELECT_DEPLOYMENT_BY_ID, (r.id,)).fetchone()
    return deployment_from_row(row)


def _append(
    conn: sqlite3.Connection, deployment_id: str, lines: list[str], at: str, limit: int
) -> OutputTotals | None:
    row = conn.execute(sql.SELECT_OUTPUT_TOTALS, (deployment_id,)).fetchone()
    before = OutputTotals(row["lines"], row["bytes"]) if row else OutputTotals(0, 0)
    after = OutputTotals(before.lines + len(lines), before.bytes + output_bytes(lines))
    if after.bytes > limit:
        return None
    conn.executemany(sql.INSERT_OUTPUT, [(deployment_id, at, line) for line in lines])
    conn.execute(sql.UPSERT_OUTPUT_TOTALS, (deployment_id, after.lines, after.bytes))
    return after


class SqliteLifecycle:
    """Lifecycle operations; mixed into SqliteStore, which owns `engine`."""

    engine: SqliteEngine

    async def transition(self, command: TransitionCommand) -> Deployment | None:
        """Update, event, deliveries and rollback facts in one transaction (optimistic on
        the status: None when it changed meanwhile)."""
        result: Deployment | None = await self.engine.write(lambda conn: _transition(conn, command))
        return result

    async def latest_of_version(
        self, component: str, stage: str | None, version: str
    ) -> Deployment | None:
        """The last recorded deployment of `version` to `component` and `stage`."""

        def op(conn: sqlite3.Connection) -> Deployment | None:
            row = conn.execute(sql.LATEST_OF_VERSION, (component, version, stage)).fetchone()
            return deployment_from_row(row) if row else None

        return await self.engine.read(op)

    async def live_ids(
        self, keys: list[tuple[str, str | None]]
    ) -> dict[tuple[str, str | None], str]:
        """The live deployment of each (component, stage): one index probe each."""

        def op(conn: sqlite3.Connection) -> dict[tuple[str, str | None], str]:
            found = {}
            for key in dict.fromkeys(keys):
                row = conn.execute(sql.LIVE_ID, key).fetchone()
                if row is not None:
                    found[key] = row[0]
            return found

        return await self.engine.read(op)

    async def deployments_by_ids(self, ids: list[str]) -> dict[str, Deployment]:
        """The existing deployments among `ids`."""

        def op(conn: sqlite3.Connection) -> dict[str, Deployment]:
            found = {}
            for record_id in dict.fromkeys(ids):
                row = conn.execute(sql.SELECT_DEPLOYMENT_BY_ID, (record_id,)).fetchone()
                if row is not None and row["kind"] == "deployment":
                    found[record_id] = deployment_from_row(row)
            return found

        return await self.engine.read(op)

    async def append_output(
        self, deployment_id: str, lines: list[str], at: datetime, limit_bytes: int
    ) -> OutputTotals | None:
        """Append lines unless the log would pass `limit_bytes`."""
        stamp = format_db(at)
        result: OutputTotals | None = await self.engine.write(
            lambda conn: _append(conn, deployment_id, lines, stamp, limit_bytes)
        )
        return result

    async def read_output(self, deployment_id: str) -> list[str]:
        """Every line of the log, in order."""
        return await self.engine.read(
            lambda conn: [r[0] for r in conn.execute(sql.SELECT_OUTPUT, (deployment_id,))]
        )
