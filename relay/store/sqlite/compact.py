"""How SQLite keeps the outbox compact (migration 0010): the ids of deliveries and events
are stored as the 16 bytes of their UUID, their times as integer microseconds since the
Unix epoch, and an event's payload deflated with a dictionary of what every deployment
event says (payload format 1).

A long outage leaves millions of waiting deliveries, and every text UUID and ISO time in
their rows and indexes costs 20 bytes or more over its binary form; a payload of ~600
bytes of JSON deflates to ~190. The API still sees the same ids, datetimes and payloads:
the conversions happen here, at the store boundary only.
"""

from __future__ import annotations

import re
import sqlite3
import zlib
from datetime import UTC, datetime, timedelta

from relay.timeutil import parse_db, to_utc

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_US = 86_400_000_000


# A UUID as relay and most clients write it; anything else (upper case, braces) is kept
# as text so that it reads back exactly as it was given.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def id_key(value: str) -> bytes | str:
    """A delivery's or event's id as stored: a UUID in its canonical text form as its 16
    bytes, so that it reads back the same; any other id (a caller's own, a mistyped one)
    as it is."""
    if len(value) == 36 and _CANONICAL_UUID.fullmatch(value):
        return bytes.fromhex(value.replace("-", ""))
    return value


def id_text(key: bytes | str) -> str:
    """A stored id as the API shows it."""
    if isinstance(key, bytes):
        h = key.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return key


def micros(value: datetime) -> int:
    """A datetime as whole microseconds since the Unix epoch (UTC); exact both ways."""
    delta = to_utc(value) - EPOCH
    return delta.days * _DAY_US + delta.seconds * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    """The UTC datetime `micros` stored."""
    return EPOCH + timedelta(microseconds=value)


def optional_time(value: int | None) -> datetime | None:
    """`from_micros`, with None for a time not set."""
    return None if value is None else from_micros(value)


# The deflate dictionary of payload format 1: the keys and usual values of a deployment
# event in the order relay writes them, so that a payload costs little more than its own
# values. Stored payloads depend on it byte for byte: never edit it, add a format 2.
_PAYLOAD_DICT_1 = (
    b'"deployment.created","deployment.status_changed","build","running","failed",'
    b'"canceled","staging",{"id":"","number":,"kind":"deployment","component":"",'
    b'"version":"","result":"success","status":"success","stage":"production",'
    b'"host":null,"code_name":null,"started_at":null,"finished_at":"","commit_sha":null,'
    b'"committed_at":null,"branch":null,"tag":null,"meta_data":{},"triggered_by":"",'
    b'"created_at":"","updated_at":"","is_rollback":false,"reverted_at":null,'
    b'"reverted_by":null,"reverted":false,"is_deploying":false}'
)
_FORMAT_1 = b"\x01"


def pack_payload(text: str) -> bytes:
    """An event's JSON as stored: format byte 1, then raw deflate with the dictionary."""
    # Level 1 with a small memory level: ~7 µs, within a few bytes of the best ratio.
    packer = zlib.compressobj(1, zlib.DEFLATED, -15, 4, zlib.Z_DEFAULT_STRATEGY, _PAYLOAD_DICT_1)
    return _FORMAT_1 + packer.compress(text.encode()) + packer.flush()


def unpack_payload(value: bytes | str) -> str:
    """The JSON of a stored payload; one stored as text (before format 1) is read as is."""
    if isinstance(value, str):
        return value
    if value[:1] != _FORMAT_1:
        raise ValueError("unknown payload format")
    unpacker = zlib.decompressobj(-15, _PAYLOAD_DICT_1)
    return (unpacker.decompress(value[1:]) + unpacker.flush()).decode()


def _micros_of_text(value: str | None) -> int | None:
    return None if value is None else micros(parse_db(value))


def register(conn: sqlite3.Connection) -> None:
    """Make `relay_id_text` and `relay_payload` callable from SQL on `conn`, for the
    queries that answer ids and payloads (listings, dashboards, the feed)."""
    conn.create_function("relay_id_text", 1, id_text, deterministic=True)
    conn.create_function("relay_payload", 1, unpack_payload, deterministic=True)


def register_migration(conn: sqlite3.Connection) -> None:
    """Make `relay_id_key` and `relay_micros` callable from SQL on `conn`, for migration
    0010, which converted the rows written before it."""
    conn.create_function("relay_id_key", 1, id_key, deterministic=True)
    conn.create_function("relay_micros", 1, _micros_of_text, deterministic=True)
