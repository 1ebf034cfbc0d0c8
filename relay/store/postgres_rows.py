"""PostgreSQL rows to and from relay's models (shared by the postgres*.py modules)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from relay.models import Attempt, Delivery, Deployment

Row = asyncpg.Record
# A row, or a row as a dict (e.g. with a joined table's columns taken out).
RowLike = asyncpg.Record | dict[str, Any]


def occurred(d: Deployment) -> datetime:
    """The time listings sort on: finished_at, else started_at, else created_at."""
    return d.finished_at or d.started_at or d.created_at


def deployment_columns(records: list[Deployment]) -> list[list[Any]]:
    """The 19 column arrays of sql.INSERT_RECORDS for `records`, in DEPLOYMENT_COLUMNS order."""
    rows = [
        (
            d.id,
            d.kind,
            d.component,
            d.version,
            d.result,
            d.status.value,
            d.stage,
            d.host,
            d.code_name,
            d.started_at,
            d.finished_at,
            d.commit_sha,
            d.branch,
            d.tag,
            json.dumps(d.meta_data, ensure_ascii=False),
            d.triggered_by,
            d.created_at,
            d.updated_at,
            occurred(d),
        )
        for d in records
    ]
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * 19


def deployment(row: RowLike) -> Deployment:
    """A Deployment from a row selected with DEPLOYMENT_COLUMNS (and maybe seq)."""
    data = dict(row)
    data.pop("seq", None)
    data.pop("occurred_at", None)
    data["meta_data"] = json.loads(data["meta_data"])
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
