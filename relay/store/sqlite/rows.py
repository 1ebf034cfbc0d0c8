"""Deployment rows of SQLite: to and from the model, and the rollback facts decided on
write (the rule is in lifecycle_base.py). Shared by sqlite/store.py and sqlite/lifecycle.py."""

from __future__ import annotations

import sqlite3
from typing import Any

from relay.models import Deployment, Status
from relay.store import rows
from relay.store.sqlite import sql as sql
from relay.timeutil import format_db, parse_db

_TIMES = ("started_at", "finished_at", "created_at", "updated_at", "reverted_at", "committed_at")


def db_time(value: Any) -> str | None:
    """A datetime in storage format; None stays None."""
    return None if value is None else format_db(value)


def deployment_values(d: Deployment) -> tuple[Any, ...]:
    """The parameters of sql.INSERT_DEPLOYMENT for `d`."""
    return rows.deployment_values(d, format_db)


def deployment_from_row(row: sqlite3.Row) -> Deployment:
    """A Deployment from a row selected with sql.READ_COLUMNS."""
    data = rows.deployment_data(dict(row))
    for key in _TIMES:
        if data.get(key) is not None:
            data[key] = parse_db(data[key])
    data["is_rollback"] = bool(data.get("is_rollback"))
    return Deployment.model_validate(data)


def decide_rollback(conn: sqlite3.Connection, record: Deployment) -> bool:
    """For a deployment just written as `success`: mark it a rollback and the deployment it
    replaced reverted when the rule says so; True when it is a rollback."""
    if record.kind != "deployment" or record.status != Status.SUCCESS:
        return False
    top = conn.execute(sql.LIVE_TOP_TWO, (record.component, record.stage)).fetchall()
    if len(top) < 2 or top[0]["id"] != record.id:
        return False  # nothing was live before, or `record` is not the live one
    replaced = top[1]
    if replaced["version"] == record.version:
        return False
    earlier = conn.execute(
        sql.VERSION_LIVE_BEFORE,
        (
            record.component,
            record.version,
            record.stage,
            replaced["occurred_at"],
            replaced["seq"],
        ),
    ).fetchone()
    if earlier is None:
        return False
    conn.execute(sql.MARK_ROLLBACK, (record.id,))
    reverted_at = format_db(record.finished_at or record.updated_at)
    conn.execute(sql.MARK_REVERTED, (reverted_at, record.triggered_by, replaced["id"]))
    return True
