"""UTC helpers (relay/timeutil.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from relay.timeutil import format_db, format_wire, parse_db, to_utc, utcnow


def test_utcnow_is_aware_utc() -> None:
    """The service's clock is timezone-aware UTC."""
    assert utcnow().utcoffset() == timedelta(0)


def test_to_utc_converts_offsets_and_assumes_naive_is_utc() -> None:
    """Offsets are converted; a naive time is taken as UTC."""
    plus_two = datetime(2018, 5, 27, 15, 15, tzinfo=timezone(timedelta(hours=2)))
    assert to_utc(plus_two) == datetime(2018, 5, 27, 13, 15, tzinfo=UTC)
    assert to_utc(plus_two).tzinfo is UTC
    assert to_utc(datetime(2018, 5, 27, 13, 15)) == datetime(2018, 5, 27, 13, 15, tzinfo=UTC)


def test_wire_format() -> None:
    """The API shows milliseconds and a Z, whatever the input offset."""
    when = datetime(2018, 5, 27, 9, 15, 30, 311999, tzinfo=timezone(timedelta(hours=-4)))
    assert format_wire(when) == "2018-05-27T13:15:30.311Z"


def test_db_format_round_trips_and_sorts_as_text() -> None:
    """Stored times keep microseconds and sort correctly as strings."""
    times = [
        datetime(2018, 5, 27, 13, 15, 30, 311123, tzinfo=UTC),
        datetime(2018, 5, 27, 13, 15, 30, 311124, tzinfo=UTC),
        datetime(2018, 5, 27, 13, 15, 31, tzinfo=UTC),
        datetime(2019, 1, 1, tzinfo=UTC),
    ]
    texts = [format_db(t) for t in times]
    assert [parse_db(t) for t in texts] == times
    assert sorted(texts) == texts
    assert len({len(t) for t in texts}) == 1
