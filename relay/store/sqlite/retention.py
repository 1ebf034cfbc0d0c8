"""Retention on SQLite: each rule is one short write through the group-commit writer.

A rule's write selects at most one batch of its rows and deletes them (with what goes
with them) one id at a time through indexes, so that it takes milliseconds, and ingest
writes queued meanwhile are committed right after it (or with it), never behind a long
delete. A prune does not wait for the fsync (see SqliteEngine.write). The rules
themselves are in retention_base.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from functools import partial

from relay.store.retention_base import PruneResult, RetentionPolicy
from relay.store.sqlite import sql as sql
from relay.store.sqlite.compact import micros
from relay.store.sqlite.engine import SqliteEngine
from relay.timeutil import format_db

Rule = Callable[[sqlite3.Connection, datetime, int], PruneResult]
Ids = list[tuple[object]]


def _ids(conn: sqlite3.Connection, query: str, before: str | int, limit: int) -> Ids:
    return [(row[0],) for row in conn.execute(query, (before, limit))]


def _delete(conn: sqlite3.Connection, statement: str, ids: Ids) -> int:
    return conn.executemany(statement, ids).rowcount


def _attempts(conn: sqlite3.Connection, before: datetime, limit: int) -> PruneResult:
    ids = _ids(conn, sql.OLD_ATTEMPTS, format_db(before), limit)
    return PruneResult(attempts=_delete(conn, sql.DELETE_ATTEMPT, ids)) if ids else PruneResult()


def _deliveries(conn: sqlite3.Connection, before: datetime, limit: int) -> PruneResult:
    # Deliveries' and events' times are integers (sqlite/compact.py), the others' text.
    ids = _ids(conn, sql.OLD_DELIVERIES, micros(before), limit)
    if not ids:
        return PruneResult()
    return PruneResult(
        attempts=_delete(conn, sql.DELETE_DELIVERY_ATTEMPTS, ids),
        deliveries=_delete(conn, sql.DELETE_DELIVERY, ids),
    )


def _events(conn: sqlite3.Connection, before: datetime, limit: int) -> PruneResult:
    ids = _ids(conn, sql.OLD_EVENTS, micros(before), limit)
    if not ids:
        return PruneResult()
    return PruneResult(
        attempts=_delete(conn, sql.DELETE_EVENT_ATTEMPTS, ids),
        deliveries=_delete(conn, sql.DELETE_EVENT_DELIVERIES, ids),
        events=_delete(conn, sql.DELETE_EVENT, ids),
    )


def _deployments(conn: sqlite3.Connection, before: datetime, limit: int) -> PruneResult:
    ids = _ids(conn, sql.OLD_DEPLOYMENTS, format_db(before), limit)
    if not ids:
        return PruneResult()
    attempts = _delete(conn, sql.DELETE_DEPLOYMENT_ATTEMPTS, ids)
    deliveries = _delete(conn, sql.DELETE_DEPLOYMENT_DELIVERIES, ids)
    events = _delete(conn, sql.DELETE_DEPLOYMENT_EVENTS, ids)
    outputs = _delete(conn, sql.DELETE_DEPLOYMENT_OUTPUTS, ids)
    for statement in (
        sql.DELETE_DEPLOYMENT_SHARED,
        sql.DELETE_DEPLOYMENT_OUTPUT_TOTALS,
        sql.DELETE_DEPLOYMENT_LINKS,
    ):
        _delete(conn, statement, ids)
    return PruneResult(
        attempts=attempts,
        deliveries=deliveries,
        events=events,
        outputs=outputs,
        deployments=_delete(conn, sql.DELETE_DEPLOYMENT, ids),
    )


def _idempotency_keys(conn: sqlite3.Connection, before: datetime, limit: int) -> PruneResult:
    ids = _ids(conn, sql.OLD_IDEMPOTENCY_KEYS, format_db(before), limit)
    if not ids:
        return PruneResult()
    return PruneResult(idempotency_keys=_delete(conn, sql.DELETE_IDEMPOTENCY_KEY, ids))


def _run(rule: Rule, before: datetime, limit: int, conn: sqlite3.Connection) -> PruneResult:
    return rule(conn, before, limit)


# In this order: attempts and deliveries first leave less for the wider rules to carry.
RULES: tuple[tuple[str, Rule], ...] = (
    ("attempts", _attempts),
    ("deliveries", _deliveries),
    ("events", _events),
    ("deployments", _deployments),
    ("idempotency_keys", _idempotency_keys),
)


class SqliteRetention:
    """Pruning; mixed into SqliteStore, which owns `engine`."""

    engine: SqliteEngine

    async def prune(self, policy: RetentionPolicy, now: datetime, batch_size: int) -> PruneResult:
        """One batch of each rule, each its own write (see the module docstring)."""
        total = PruneResult()
        for kind, rule in RULES:
            cutoff = policy.cutoff(kind, now)
            if cutoff is None:
                continue
            op = partial(_run, rule, cutoff, batch_size)
            # Does not wait for the fsync: a prune lost to a power cut is only done again.
            total += await self.engine.write(op, durable=False)
        return total
