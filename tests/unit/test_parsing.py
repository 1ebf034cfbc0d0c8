"""Turning query strings, form pairs and JSON bodies into fields (relay/api/parsing.py)."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.api.parsing import decode_json_object, nest_pairs, restore_plus, urlencoded_fields
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


# Hostile input: whatever arrives, the parsers answer fields or a MalformedBody (a 400),
# never another exception (which would be a 500).

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_decode_to_an_object_or_malformed_body(body: bytes) -> None:
    """Arbitrary bytes as a JSON body give a dict or MalformedBody, nothing else."""
    with contextlib.suppress(MalformedBody):
        assert isinstance(decode_json_object(body), dict)


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_any_json_value_decodes_to_an_object_or_malformed_body(value: object) -> None:
    """Any JSON document (NaN, huge numbers, NUL, surrogates included) gives a dict or
    MalformedBody."""
    try:
        body = json.dumps(value).encode("utf-8", "surrogatepass")
        fields = decode_json_object(body)
    except MalformedBody:
        return
    assert isinstance(fields, dict)
    assert "\x00" not in json.dumps(fields)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=30), st.text(max_size=30)), max_size=10))
def test_any_bracket_pairs_nest_or_raise_malformed_body(pairs: list[tuple[str, str]]) -> None:
    """Arbitrary form/query names (brackets, NUL, unicode) give nested dicts or MalformedBody."""
    try:
        fields = nest_pairs(pairs)
    except MalformedBody:
        assert any("\x00" in k or "\x00" in v for k, v in pairs)
        return
    assert isinstance(fields, dict)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["meta_data", "[", "]", "[a]", "[]", "x", "=", "&", "%ff", "%00", "+"]),
        max_size=12,
    ).map("".join)
)
def test_any_urlencoded_body_parses_or_raises_malformed_body(body: str) -> None:
    """A form body built from brackets, separators and bad escapes parses or is a 400."""
    with contextlib.suppress(MalformedBody):
        assert isinstance(urlencoded_fields(body.encode()), dict)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"version": "v1", "version": "v2"}', "duplicate key 'version'"),
        (b'{"x": 1e400}', "too large"),
        (b'{"x": ' + b"9" * 5000 + b"}", "64-bit"),
        (b'{"x": 18446744073709551616}', "64-bit"),
        (b'{"x": "a\\u0000b"}', "NUL"),
        (b'{"x": "\\ud800"}', "surrogate"),
        (b'{"x": "\xed\xa0\x80"}', "surrogate"),  # a surrogate encoded as raw bytes
        ('{"x": "a\\u0000b"}'.encode("utf-16"), "NUL"),  # json also reads UTF-16
        (b"[" * 10_000 + b"]" * 10_000, "not valid JSON"),
        (b'{"x": "\xff"}', "UTF-8"),
    ],
)
def test_hostile_json_is_malformed(body: bytes, message: str) -> None:
    """Duplicate keys, out-of-range numbers, NUL, lone surrogates, deep nesting, bad UTF-8."""
    with pytest.raises(MalformedBody, match=message):
        decode_json_object(body)


def test_64_bit_integers_and_ordinary_floats_are_kept() -> None:
    """The limits leave every 64-bit integer and finite double alone."""
    body = b'{"a": 18446744073709551615, "b": -9223372036854775808, "c": 1.5e300}'
    assert decode_json_object(body) == {"a": 2**64 - 1, "b": -(2**63), "c": 1.5e300}


def test_a_form_body_must_be_utf8() -> None:
    """`%FF` in a form body is refused instead of silently becoming U+FFFD."""
    with pytest.raises(MalformedBody, match="UTF-8"):
        urlencoded_fields(b"version=v%ff1")
    assert urlencoded_fields(b"version=v%C3%A91&meta_data[a]=b") == {
        "version": "vé1",
        "meta_data": {"a": "b"},
    }
