"""Pure helpers of the deployments API (relay/api/records.py): cursors and list parameters."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from relay.api.records import ListParams, decode_cursor, encode_cursor
from relay.errors import ValidationFailed
from relay.store.base import Cursor


def test_cursor_round_trip() -> None:
    """A cursor relay made reads back to the same position, microseconds included."""
    cursor = Cursor(occurred_at=datetime(2018, 5, 27, 13, 15, 30, 311123, tzinfo=UTC), seq=42)
    text = encode_cursor(cursor)
    assert decode_cursor(text) == cursor
    assert "=" not in text and "/" not in text and "+" not in text  # URL-safe as is


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "text",
    [
        "not-a-cursor",
        "!!!",
        _b64(b"{}"),
        _b64(b"[1, 2]"),
        _b64(b'["2018-05-27T13:15:30.311000Z"]'),
        _b64(b'["yesterday", 1]'),
        _b64(b'["2018-05-27T13:15:30.311000Z", {}]'),
        _b64(b"\xff\xfe"),
        _b64(b"[" * 3000),
    ],
)
def test_foreign_cursors_are_validation_errors(text: str) -> None:
    """A cursor relay did not make is a 422 naming the `cursor` parameter, never a crash."""
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(text)
    assert caught.value.status == 422
    assert [d["field"] for d in caught.value.details] == ["cursor"]


def test_list_defaults() -> None:
    """Without parameters a listing asks for 50 items, unfiltered."""
    params = ListParams.model_validate({})
    assert params.limit == 50
    assert (params.stage, params.result, params.status, params.since, params.until) == (None,) * 5


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "ten"},
        {"limit": "-1"},
        {"status": "exploded"},
        {"since": "last week"},
    ],
)
def test_invalid_list_parameters(query: dict[str, Any]) -> None:
    """Out-of-range limits, unknown statuses and bad times are refused."""
    with pytest.raises(ValidationError):
        ListParams.model_validate(query)


def test_limit_bounds_are_inclusive() -> None:
    """limit may be 1 and 500."""
    assert ListParams.model_validate({"limit": "1"}).limit == 1
    assert ListParams.model_validate({"limit": "500"}).limit == 500
