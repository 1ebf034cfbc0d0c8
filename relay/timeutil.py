"""UTC timestamps: one wire format, one storage format."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def to_utc(value: datetime) -> datetime:
    """Normalise any datetime to UTC; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_wire(value: datetime) -> str:
    """ISO-8601 in UTC with millisecond precision and a `Z`, as the API answers."""
    return to_utc(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_db(value: datetime) -> str:
    """Fixed-width ISO-8601 in UTC with microseconds: sorts as text."""
    return to_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_db(value: str) -> datetime:
    """Read back what `format_db` wrote."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
