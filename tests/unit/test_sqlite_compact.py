"""The conversions of SQLite's compact storage (relay/store/sqlite/compact.py)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from relay.store.sqlite.compact import (
    from_micros,
    id_key,
    id_text,
    micros,
    pack_payload,
    unpack_payload,
)


def test_a_uuid_delivery_id_is_stored_as_its_16_bytes_and_read_back_the_same() -> None:
    """A relay-made id takes 16 bytes and comes back as the same text."""
    made = str(uuid.uuid4())
    key = id_key(made)
    assert isinstance(key, bytes) and len(key) == 16
    assert id_text(key) == made


@pytest.mark.parametrize(
    "given",
    [
        "delivery-1",
        "",
        "0C2E1A7E-9A1B-4E7B-8B1C-2D3E4F5A6B7C",
        "{0c2e1a7e-9a1b-4e7b-8b1c-2d3e4f5a6b7c}",
    ],
)
def test_any_other_id_is_kept_as_text_exactly(given: str) -> None:
    """An id that is not a UUID in canonical form (upper case, braces, none) stays text,
    so that looking it up finds exactly what was stored."""
    assert id_key(given) == given
    assert id_text(given) == given


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 12, 7, 17, 26, 57, 687670, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 3, 29, 2, 30, 0, 1, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_a_time_survives_microseconds_exactly(at: datetime) -> None:
    """Times stored as integer microseconds read back as the same instant, in UTC."""
    back = from_micros(micros(at))
    assert back == at and back.tzinfo == UTC


def test_integer_times_sort_as_the_instants_do() -> None:
    """The claim's order by due time holds: a later instant is a larger integer."""
    base = datetime(2026, 12, 7, tzinfo=UTC)
    stamps = [micros(base + timedelta(microseconds=n)) for n in (0, 1, 999_999, 10**6)]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4


def test_a_payload_is_packed_small_and_unpacked_to_the_same_json() -> None:
    """A deployment event's JSON (non-ASCII included) comes back byte for byte, stored in
    well under half its size."""
    data = {
        "id": str(uuid.uuid4()),
        "number": 41,
        "kind": "deployment",
        "component": "web",
        "version": "v1.2.3",
        "status": "success",
        "stage": "production",
        "host": None,
        "meta_data": {"note": "déployé ✓", "pipeline": "build-1234"},
        "is_rollback": False,
    }
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    packed = pack_payload(text)
    assert unpack_payload(packed) == text
    assert len(packed) < len(text.encode()) / 2


def test_a_payload_stored_as_text_is_read_as_is() -> None:
    """Payloads written before format 1 are plain JSON text and still read."""
    assert unpack_payload('{"version": "v1"}') == '{"version": "v1"}'


def test_an_unknown_payload_format_is_refused() -> None:
    """Bytes of a format this relay does not know are an error, never garbage JSON."""
    with pytest.raises(ValueError, match="payload format"):
        unpack_payload(b"\x07abc")
