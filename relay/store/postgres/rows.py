"""PostgreSQL rows to and from relay's models (shared by the postgres*.py modules)."""

from __future__ import annotations

from typing import Any

import asyncpg

from relay.models import Attempt, Delivery, Deployment
from relay.store import rows
from relay.store.rows import as_is

Row = asyncpg.Record
# A row, or a row as a dict (e.g. with a joined table's columns taken out).
RowLike = asyncpg.Record | dict[str, Any]


def deployment_columns(records: list[Deployment]) -> list[list[Any]]:
    """The 20 column arrays of sql.INSERT_RECORDS for `records`, in DEPLOYMENT_COLUMNS order."""
    values = [rows.deployment_values(d, as_is) for d in records]
    return [list(column) for column in zip(*values, strict=True)] if values else [[]] * 20


def deployment(row: RowLike) -> Deployment:
    """A Deployment from a row selected with DEPLOYMENT_COLUMNS (and maybe seq)."""
    data = rows.deployment_data(dict(row))
    if "is_rollback" in data:
        data["is_rollback"] = bool(data["is_rollback"])
    return Deployment.model_validate(data)


def delivery(row: Row, attempts: list[Attempt] | None = None) -> Delivery:
    """A delivery as the API shows it (next_attempt_at only while pending)."""
    data = dict(row)
    if data["status"] != "pending":
        data["next_attempt_at"] = None
    return Delivery(**data, attempt_log=attempts)


def attempt(row: Row) -> Attempt:
    """One attempt row."""
    data = dict(row)
    data.pop("delivery_id", None)
    return Attempt(**data)
