"""Frames of the live feed: what durable rows look like on the wire, and their ids.

A frame's id is the feed position right after it: one sequence number per stream
(`<events>-<attempts>-<outputs>`, e.g. `41-7-0`). Giving that id back
(`Last-Event-ID`) replays every stream from where the client was, so frames of
every durable kind resume with no gap and no duplicate, whatever the interleaving.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from relay.errors import ValidationFailed
from relay.store.feed_base import FeedAttempt, FeedCursor, FeedEvent, FeedOutput, FeedPage
from relay.timeutil import format_wire

STREAMS = ("events", "attempts", "outputs")
# Event types that start a deployment or build; every other one of a record is a change.
_NEW_SUFFIXES = (".created", ".started")


@dataclass(frozen=True)
class Frame:
    """One message of the feed; encoded once, whatever the number of subscribers."""

    type: str
    data: dict[str, Any]
    id: str | None = None
    stream: str | None = None
    seq: int = 0
    component: str | None = None
    stage: str | None = None

    @cached_property
    def message(self) -> str:
        """The WebSocket text message: `{"type", "id", "data"}`."""
        body: dict[str, Any] = {"type": self.type, "data": self.data}
        if self.id is not None:
            body["id"] = self.id
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))

    @cached_property
    def sse(self) -> bytes:
        """The Server-Sent Events block: `id:` (when resumable), `event:`, `data:`."""
        data = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        head = f"id: {self.id}\n" if self.id is not None else ""
        return f"{head}event: {self.type}\ndata: {data}\n\n".encode()


def format_id(cursor: FeedCursor) -> str:
    """The id of the position `cursor`."""
    return f"{cursor.events}-{cursor.attempts}-{cursor.outputs}"


def parse_id(text: str) -> FeedCursor:
    """The position of a frame id; ValidationFailed for anything the feed did not send."""
    parts = text.strip().split("-")
    if len(parts) != len(STREAMS) or not all(p.isascii() and p.isdigit() for p in parts):
        raise ValidationFailed(
            "invalid Last-Event-ID",
            details=[
                {
                    "field": "last_event_id",
                    "message": "use the id of a frame this feed sent, like 41-7-0",
                }
            ],
        )
    events, attempts, outputs = (int(p) for p in parts)
    return FeedCursor(events=events, attempts=attempts, outputs=outputs)


def covers(cursor: FeedCursor, position: FeedCursor) -> bool:
    """True when `cursor` is at or past `position` in every stream."""
    return all(getattr(cursor, s) >= getattr(position, s) for s in STREAMS)


def ping_frame(now: datetime) -> Frame:
    """The periodic keep-alive."""
    return Frame("ping", {"at": format_wire(now)})


def skipped_frame(count: int, last_id: str | None) -> Frame:
    """Tells a slow subscriber that `count` frames were dropped after `last_id`."""
    return Frame("skipped", {"count": count, "last_event_id": last_id})


def log_frame(
    deployment_id: str, component: str, stage: str | None, text: str, at: datetime
) -> Frame:
    """A live-only `log` frame (no id): output published without a durable position."""
    data = {
        "deployment_id": deployment_id,
        "component": component,
        "stage": stage,
        "content": text,
        "at": format_wire(at),
    }
    return Frame("log", data, component=component, stage=stage)


def _stage(payload: dict[str, Any]) -> str | None:
    stage = payload.get("stage")
    return stage if isinstance(stage, str) else None


def event_frame(row: FeedEvent) -> Frame | None:
    """`new` or `status` for an event of a deployment or build; None for other events."""
    if row.deployment_id is None or row.type.startswith("release."):
        return None
    kind = "new" if row.type.endswith(_NEW_SUFFIXES) else "status"
    data: dict[str, Any] = {
        "event_id": row.id,
        "event_type": row.type,
        "at": format_wire(row.created_at),
    }
    if kind == "status":
        data["status"] = row.payload.get("status")
    data["deployment"] = row.payload
    return Frame(kind, data, component=row.component, stage=_stage(row.payload))


def attempt_frame(row: FeedAttempt) -> Frame:
    """`delivery`: one attempt's outcome (delivered, skipped, retry, dead)."""
    a = row.attempt
    data = {
        "delivery_id": row.delivery_id,
        "forwarder": row.forwarder,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "deployment_id": row.deployment_id,
        "component": row.component,
        "stage": row.stage,
        "attempt": a.number,
        "outcome": a.outcome,
        "status_code": a.status_code,
        "error": a.error,
        "duration_ms": a.duration_ms,
        "at": format_wire(_finished(row)),
    }
    return Frame("delivery", data, component=row.component, stage=row.stage)


def output_frame(row: FeedOutput) -> Frame:
    """`log`: text appended to a deployment's output."""
    return log_frame(row.deployment_id, row.component, row.stage, row.text, row.created_at)


def _finished(row: FeedAttempt) -> datetime:
    return row.attempt.started_at + timedelta(milliseconds=row.attempt.duration_ms)


_Item = tuple[datetime, int, int, Frame | None]
FeedRow = FeedEvent | FeedAttempt | FeedOutput


def _items(page: FeedPage) -> list[Iterator[_Item]]:
    # (time, stream index, seq, frame): each stream stays in seq order whatever its times.
    return [
        iter([(r.created_at, 0, r.seq, event_frame(r)) for r in page.events]),
        iter([(_finished(r), 1, r.seq, attempt_frame(r)) for r in page.attempts]),
        iter([(r.created_at, 2, r.seq, output_frame(r)) for r in page.outputs]),
    ]


def merge(page: FeedPage, cursor: FeedCursor, limit: int) -> tuple[list[Frame], FeedCursor]:
    """Interleave a page's streams by time into frames with ids; the position after them.

    A stream that filled its `limit` may have more rows right after its last one, so
    the merge stops there: the next read continues from a position with no gap.
    Rows that make no frame (a release event) still move the position."""
    streams: tuple[Sequence[FeedRow], ...] = (page.events, page.attempts, page.outputs)
    # The last seq of each stream that filled its page: no row of any stream goes past it.
    ends = {i: rows[-1].seq for i, rows in enumerate(streams) if rows and len(rows) >= limit}
    frames: list[Frame] = []
    for _, stream, seq, frame in heapq.merge(*_items(page), key=lambda item: item[0]):
        cursor = replace(cursor, **{STREAMS[stream]: seq})
        if frame is not None:
            frames.append(replace(frame, id=format_id(cursor), stream=STREAMS[stream], seq=seq))
        if ends.get(stream) == seq:
            break
    return frames, cursor
