"""Turning query strings, form pairs and JSON bodies into fields (relay/api/parsing.py)."""

from __future__ import annotations

import pytest

from relay.api.parsing import decode_json_object, nest_pairs, restore_plus
from relay.errors import MalformedBody


def test_flat_pairs_become_fields() -> None:
    """Plain `key=value` pairs become string fields."""
    assert nest_pairs([("version", "v1.2.3"), ("stage", "staging")]) == {
        "version": "v1.2.3",
        "stage": "staging",
    }


def test_bracket_keys_build_meta_data() -> None:
    """`meta_data[user_id]=metauser&meta_data[foo]=bar` becomes a meta_data object."""
    pairs = [
        ("version", "v1"),
        ("meta_data[user_id]", "metauser"),
        ("meta_data[foo]", "bar"),
    ]
    assert nest_pairs(pairs) == {
        "version": "v1",
        "meta_data": {"user_id": "metauser", "foo": "bar"},
    }


def test_nested_bracket_keys_nest_deeper() -> None:
    """`meta_data[ci][job]=12` nests one level per bracket."""
    assert nest_pairs([("meta_data[ci][job]", "12"), ("meta_data[ci][runner]", "r1")]) == {
        "meta_data": {"ci": {"job": "12", "runner": "r1"}}
    }


def test_access_token_is_never_a_field() -> None:
    """The `access_token` query parameter is authentication, not a deployment field."""
    assert nest_pairs([("access_token", "secret-token"), ("version", "v1")]) == {"version": "v1"}


def test_last_value_wins() -> None:
    """A repeated key keeps its last value."""
    assert nest_pairs([("stage", "a"), ("stage", "b")]) == {"stage": "b"}


def test_plain_value_replaces_bracket_object_consistently() -> None:
    """A scalar and a bracket key of the same name do not crash: the later one wins."""
    assert nest_pairs([("meta_data", "x"), ("meta_data[a]", "1")]) == {"meta_data": {"a": "1"}}


@pytest.mark.parametrize(
    ("decoded", "restored"),
    [
        ("2018-05-27T15:15:30.311 02:00", "2018-05-27T15:15:30.311+02:00"),
        ("2018-05-27T15:15:30 0200", "2018-05-27T15:15:30+0200"),
        ("2018-05-27T15:15:30 02", "2018-05-27T15:15:30+02"),
        ("2018-05-27T13:15:30.311Z", "2018-05-27T13:15:30.311Z"),
        ("Funky Fünke", "Funky Fünke"),
        ("2018-05-27 13:15:30", "2018-05-27 13:15:30"),
    ],
)
def test_restore_plus(decoded: str, restored: str) -> None:
    """A UTC offset whose `+` became a space in a query string gets its `+` back."""
    assert restore_plus(decoded) == restored


def test_query_timestamps_get_their_plus_back() -> None:
    """A `started_at=...+02:00` sent unencoded in a query string keeps its offset."""
    fields = nest_pairs([("started_at", "2018-05-27T15:15:30.311 02:00")])
    assert fields == {"started_at": "2018-05-27T15:15:30.311+02:00"}


def test_json_object_is_decoded() -> None:
    """A JSON object body, with unicode, becomes its dict."""
    assert decode_json_object(' { "code_name": "Funky Fünke" } '.encode()) == {
        "code_name": "Funky Fünke"
    }


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"version": ', "not valid JSON"),
        (b"[1, 2]", "must be an object"),
        (b'"v1"', "must be an object"),
        (b'{"version": "v1", "meta_data": {"x": NaN}}', "NaN"),
        (b'{"version": "v1", "n": Infinity}', "Infinity"),
        (b'{"version": "\xff"}', "UTF-8"),
        (b"[" * 100_000, "not valid JSON"),
    ],
)
def test_bad_json_is_a_malformed_body(body: bytes, reason: str) -> None:
    """Anything but a valid JSON object raises MalformedBody (a 400), saying why."""
    with pytest.raises(MalformedBody, match=reason) as caught:
        decode_json_object(body)
    assert caught.value.status == 400
