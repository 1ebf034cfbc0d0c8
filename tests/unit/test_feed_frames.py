"""Frames of the live feed (relay/feed/frames.py): ids, wire encodings, interleaving."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from relay.errors import ValidationFailed
from relay.feed.frames import Frame, covers, format_id, merge, parse_id
from relay.models import Attempt
from relay.store.feed_base import FeedAttempt, FeedCursor, FeedEvent, FeedOutput, FeedPage
from tests.support import T0

S = timedelta(seconds=1)


def event(seq: int, at: float, type_: str = "deployment.created", **payload: object) -> FeedEvent:
    """An events row of deployment `d<seq>` of `api` at T0 + `at` seconds."""
    body = {"id": f"d{seq}", "component": "api", "stage": "prod", "status": "success", **payload}
    return FeedEvent(seq, f"e{seq}", type_, f"d{seq}", "api", T0 + at * S, body)


def attempt(seq: int, at: float) -> FeedAttempt:
    """An attempt row that finished at T0 + `at` seconds."""
    tried = Attempt(number=1, started_at=T0 + at * S, duration_ms=0.0, outcome="delivered")
    return FeedAttempt(
        seq, f"del{seq}", "hook", "e1", "deployment.created", "d1", "api", "prod", tried
    )


def output(seq: int, at: float) -> FeedOutput:
    """An output line appended at T0 + `at` seconds."""
    return FeedOutput(seq, "d1", "api", "prod", T0 + at * S, f"line {seq}")


def test_ids_round_trip() -> None:
    """A frame id names a position in every stream and reads back as that position."""
    cursor = FeedCursor(events=41, attempts=7, outputs=0)
    assert format_id(cursor) == "41-7-0"
    assert parse_id(" 41-7-0 ") == cursor


@pytest.mark.parametrize("text", ["", "41", "41-7", "1-2-3-4", "a-b-c", "-1-2-3", "1-²-3"])
def test_ids_the_feed_never_sent_are_refused(text: str) -> None:
    """A Last-Event-ID that is not three decimal numbers is a validation error."""
    with pytest.raises(ValidationFailed):
        parse_id(text)


def test_covers_compares_every_stream() -> None:
    """A cursor covers a position only when it is at or past it in every stream."""
    assert covers(FeedCursor(3, 2, 1), FeedCursor(3, 2, 1))
    assert not covers(FeedCursor(9, 9, 0), FeedCursor(3, 2, 1))


def test_merge_interleaves_streams_by_time_with_ids() -> None:
    """Rows of all streams come out in time order, each with the position after it."""
    page = FeedPage(
        events=[event(1, 0), event(2, 3, "deployment.status_changed")],
        attempts=[attempt(1, 1)],
        outputs=[output(1, 2)],
    )
    frames, end = merge(page, FeedCursor(), 10)
    assert [(f.type, f.id) for f in frames] == [
        ("new", "1-0-0"),
        ("delivery", "1-1-0"),
        ("log", "1-1-1"),
        ("status", "2-1-1"),
    ]
    assert end == FeedCursor(2, 1, 1)
    assert frames[3].data["status"] == "success"
    assert frames[2].data["content"] == "line 1"


def test_merge_stops_where_a_full_stream_may_continue() -> None:
    """When a stream filled its page, nothing later than its last row is emitted yet."""
    page = FeedPage(events=[event(1, 0), event(2, 5)], attempts=[attempt(1, 1), attempt(2, 2)])
    frames, end = merge(page, FeedCursor(), 2)
    # attempts filled the page at t=2: the event at t=5 must wait for the next read.
    assert [f.id for f in frames] == ["1-0-0", "1-1-0", "1-2-0"]
    assert end == FeedCursor(1, 2, 0)


def test_merge_keeps_each_stream_in_seq_order_whatever_its_times() -> None:
    """Two events committed out of time order still come out by seq (no cursor regresses)."""
    page = FeedPage(events=[event(1, 5), event(2, 4)])
    frames, _ = merge(page, FeedCursor(), 10)
    assert [f.seq for f in frames] == [1, 2]


def test_events_with_no_frame_still_move_the_position() -> None:
    """A release event makes no frame, yet the position passes it."""
    page = FeedPage(events=[event(1, 0, "release.created"), event(2, 1)])
    frames, end = merge(page, FeedCursor(), 10)
    assert [f.id for f in frames] == ["2-0-0"]
    assert end.events == 2


def test_started_is_new_and_completed_is_a_status_change() -> None:
    """Creation events make `new` frames; every later event of a record makes `status`."""
    types = ["deployment.started", "build.created", "deployment.completed", "deployment.cancelled"]
    page = FeedPage(events=[event(i + 1, i, t) for i, t in enumerate(types)])
    frames, _ = merge(page, FeedCursor(), 10)
    assert [f.type for f in frames] == ["new", "new", "status", "status"]


def test_wire_encodings() -> None:
    """The SSE block carries id, event and one data line; the WS message is type, id, data."""
    frame = Frame("new", {"text": "a\nb", "name": "Fünke"}, id="1-0-0")
    assert frame.sse == 'id: 1-0-0\nevent: new\ndata: {"text":"a\\nb","name":"Fünke"}\n\n'.encode()
    assert json.loads(frame.message) == {"type": "new", "id": "1-0-0", "data": frame.data}
    ping = Frame("ping", {"at": "now"})
    assert ping.sse == b'event: ping\ndata: {"at":"now"}\n\n'
    assert "id" not in json.loads(ping.message)
