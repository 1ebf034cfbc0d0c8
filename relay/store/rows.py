"""Rows to relay's models, the same on every database backend (driver-free).

The backends select the same columns under the same names; they differ only in how a
timestamp arrives (SQLite: text in storage format, PostgreSQL: a datetime), so each
converter takes the backend's `time` function for its timestamp columns.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from relay.logging import render_json
from relay.models import Attempt, Deployment
from relay.store.base import Claimed, EventRow
from relay.store.feed_base import FeedAttempt, FeedEvent, FeedOutput

# How a backend's timestamp column becomes a datetime.
Time = Callable[[Any], datetime]


class Row(Protocol):
    """A row whose columns are read by name (sqlite3.Row, asyncpg.Record, a dict)."""

    def __getitem__(self, key: str, /) -> Any: ...


def as_is(value: Any) -> datetime:
    """The `time` of a driver that already answers datetimes."""
    result: datetime = value
    return result


def deployment_values(d: Deployment, store_time: Callable[[datetime], Any]) -> tuple[Any, ...]:
    """A deployment's values in DEPLOYMENT_COLUMNS order; `store_time` turns a datetime
    into what the backend stores."""

    def stamp(value: datetime | None) -> Any:
        return None if value is None else store_time(value)

    return (
        d.id,
        d.kind,
        d.component,
        d.version,
        d.result,
        d.status.value,
        d.stage,
        d.host,
        d.code_name,
        stamp(d.started_at),
        stamp(d.finished_at),
        d.commit_sha,
        d.branch,
        d.tag,
        render_json(d.meta_data),
        d.triggered_by,
        store_time(d.created_at),
        store_time(d.updated_at),
        store_time(d.occurred_at),
        stamp(d.committed_at),
    )


def deployment_data(data: dict[str, Any]) -> dict[str, Any]:
    """A selected deployment row's columns (as a dict, changed in place) the way
    Deployment reads them, except timestamps and is_rollback, which each driver answers
    its own way."""
    # seq is the global AUTOINCREMENT/BIGSERIAL key: stable, never reused, so it is the
    # integer number the Cloud66 dialect shows.
    if "seq" in data:
        data["number"] = data.pop("seq")
    data.pop("occurred_at", None)
    data["meta_data"] = json.loads(data["meta_data"])
    return data


def claimed(row: Row, time: Time) -> Claimed:
    """A leased delivery as the dispatcher gets it."""
    return Claimed(
        id=row["id"],
        forwarder=row["forwarder"],
        attempts=row["attempts"],
        deployment_id=row["deployment_id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        event_created_at=time(row["event_created_at"]),
        payload=json.loads(row["payload"]),
        state=json.loads(row["state"]),
        shared=json.loads(row["shared"]) if row["shared"] else {},
    )


def event_row(row: Row, time: Time) -> EventRow:
    """A recorded event."""
    return EventRow(
        id=row["id"],
        seq=row["seq"],
        type=row["type"],
        deployment_id=row["deployment_id"],
        created_at=time(row["created_at"]),
        payload=json.loads(row["payload"]),
    )


def feed_event(row: Row, time: Time) -> FeedEvent:
    """An event of the live feed."""
    return FeedEvent(
        seq=row["seq"],
        id=row["id"],
        type=row["type"],
        deployment_id=row["deployment_id"],
        component=row["component"],
        created_at=time(row["created_at"]),
        payload=json.loads(row["payload"]),
    )


def feed_attempt(row: Row, time: Time) -> FeedAttempt:
    """A delivery attempt of the live feed."""
    return FeedAttempt(
        seq=row["seq"],
        delivery_id=row["delivery_id"],
        forwarder=row["forwarder"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        deployment_id=row["deployment_id"],
        component=row["component"],
        stage=row["stage"],
        attempt=Attempt(
            number=row["number"],
            started_at=time(row["started_at"]),
            duration_ms=row["duration_ms"],
            status_code=row["status_code"],
            outcome=row["outcome"],
            error=row["error"],
        ),
    )


def feed_output(row: Row, time: Time) -> FeedOutput:
    """An output line of the live feed."""
    return FeedOutput(
        seq=row["seq"],
        deployment_id=row["deployment_id"],
        component=row["component"],
        stage=row["stage"],
        created_at=time(row["created_at"]),
        text=row["text"],
    )
