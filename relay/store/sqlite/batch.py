"""One group commit's operations, run on the SQLite writer connection.

Every operation runs inside a SAVEPOINT of its own, so that one failing operation
(a constraint, a bug) is undone alone and the rest of its commit is kept; an I/O
error, a full disk or a read-only file fails the whole batch. Consecutive payloads of
one bulk function are handled by one call (one executemany per table instead of one
execute per row), and retried one by one if that call fails.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from relay.errors import SchemaError, StoreError

Op = Callable[[sqlite3.Connection], Any]
# A bulk operation handles many callers' payloads at once (one executemany per table
# instead of one execute per row) and answers (ok, result-or-exception) per payload.
Bulk = Callable[[sqlite3.Connection, list[Any]], list[tuple[bool, Any]]]


@dataclass
class Item:
    """A queued write: an op, or one payload of a bulk function; how it is answered."""

    op: Op | None
    bulk: Bulk | None
    payload: Any
    future: asyncio.Future[Any]
    durable: bool = True


def translate(exc: sqlite3.Error) -> StoreError:
    """A driver error as relay's StoreError, worded for an operator."""
    text = str(exc)
    if "readonly" in text:
        return StoreError("the database is read-only")
    if "disk" in text and "full" in text:
        return StoreError("the disk holding the database is full")
    if "disk I/O error" in text:  # EROFS/EPERM on write (read-only mount, immutable file)
        return StoreError("the database file cannot be written (read-only or failing storage)")
    if isinstance(exc, sqlite3.DatabaseError) and ("malformed" in text or "not a database" in text):
        return SchemaError(f"the database file is corrupted ({text})")
    return StoreError(f"database error: {text}")


def apply_batch(conn: sqlite3.Connection, batch: list[Item]) -> list[tuple[bool, Any]]:
    """(ok, result-or-exception) per item, in a transaction the caller opened; raises
    sqlite3.Error when the whole batch fails (the caller rolls back)."""
    outcomes: list[tuple[bool, Any]] = []
    for group in _groups(batch):
        outcomes += _apply_group(conn, group)
    return outcomes


def _apply_group(conn: sqlite3.Connection, group: list[Item]) -> list[tuple[bool, Any]]:
    """Run one op, or one bulk call for many payloads, inside a savepoint; a bulk call
    that fails is retried payload by payload so that only the bad one fails."""
    head = group[0]
    if head.bulk is None:
        assert head.op is not None
        op = head.op
        return [_savepoint(conn, lambda: (True, op(conn)))]
    bulk = head.bulk
    payloads = [item.payload for item in group]
    outcome = _savepoint(conn, lambda: (True, bulk(conn, payloads)))
    if outcome[0]:
        results: list[tuple[bool, Any]] = outcome[1]
        return results

    def one(payload: Any) -> tuple[bool, Any]:
        return _savepoint(conn, lambda: bulk(conn, [payload])[0])

    return [one(p) for p in payloads]


def _groups(batch: list[Item]) -> list[list[Item]]:
    """Consecutive items of the same bulk function form one group; plain ops stand alone."""
    groups: list[list[Item]] = []
    for item in batch:
        if item.bulk is not None and groups and groups[-1][0].bulk is item.bulk:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def _savepoint(conn: sqlite3.Connection, run: Callable[[], tuple[bool, Any]]) -> tuple[bool, Any]:
    """Run `run` so that its writes are undone if it raises; I/O errors fail the batch."""
    conn.execute("SAVEPOINT op")
    try:
        result = run()
    except sqlite3.OperationalError:
        raise  # I/O, disk full, read-only: the whole batch fails
    except Exception as exc:
        conn.execute("ROLLBACK TO op")
        conn.execute("RELEASE op")
        return (False, translate(exc) if isinstance(exc, sqlite3.Error) else exc)
    conn.execute("RELEASE op")
    return result
