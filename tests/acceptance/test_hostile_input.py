"""Hostile request bodies on a whole relay: each is a clear 4xx JSON error, never a 5xx
and never a traceback."""

from __future__ import annotations

import json

import pytest

from tests.acceptance.api import Client, assert_error, bearer

JSON_TYPE = {"Content-Type": "application/json"}
FORM_TYPE = {"Content-Type": "application/x-www-form-urlencoded"}
DEPLOYMENTS = "/components/api/deployments"


def _meta(meta: bytes) -> bytes:
    return b'{"version": "v1", "meta_data": ' + meta + b"}"


HOSTILE = [
    ("nested_arrays", JSON_TYPE, _meta(b"[" * 10_000 + b"]" * 10_000), 400, "malformed_body"),
    ("nested_objects", JSON_TYPE, b'{"a": ' * 10_000 + b"1" + b"}" * 10_000, 400, None),
    (
        "10000_keys",
        JSON_TYPE,
        _meta(json.dumps({f"k{i}": i for i in range(10_000)}).encode()),
        422,
        "validation_error",
    ),
    ("invalid_utf8_json", JSON_TYPE, b'{"version": "v\xff1"}', 400, "malformed_body"),
    ("invalid_utf8_form", FORM_TYPE, b"version=v%ff1", 400, "malformed_body"),
    ("raw_invalid_utf8_form", FORM_TYPE, b"version=v\xff1", 400, "malformed_body"),
    ("nul_json_value", JSON_TYPE, b'{"version": "v\\u00001"}', 400, "malformed_body"),
    ("nul_json_key", JSON_TYPE, _meta(b'{"a\\u0000": 1}'), 400, "malformed_body"),
    ("nul_form", FORM_TYPE, b"version=v%001", 400, "malformed_body"),
    ("lone_surrogate", JSON_TYPE, _meta(b'{"a": "\\ud800"}'), 400, "malformed_body"),
    ("huge_float", JSON_TYPE, _meta(b'{"x": 1e400}'), 400, "malformed_body"),
    ("huge_int", JSON_TYPE, _meta(b'{"x": 1' + b"0" * 5000 + b"}"), 400, "malformed_body"),
    ("nan", JSON_TYPE, _meta(b'{"x": NaN}'), 400, "malformed_body"),
    ("duplicate_keys", JSON_TYPE, b'{"version": "v1", "version": "v2"}', 400, "malformed_body"),
    ("top_level_array", JSON_TYPE, b"[]", 400, "malformed_body"),
    ("top_level_string", JSON_TYPE, b'"v1"', 400, "malformed_body"),
    ("top_level_number", JSON_TYPE, b"1", 400, "malformed_body"),
    ("top_level_null", JSON_TYPE, b"null", 400, "malformed_body"),
    ("wrong_field_type", JSON_TYPE, b'{"version": ["v1"]}', 422, "validation_error"),
]


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [case[1:] for case in HOSTILE],
    ids=[case[0] for case in HOSTILE],
)
async def test_hostile_bodies_get_a_clear_4xx(
    client: Client, headers: dict[str, str], body: bytes, status: int, code: str | None
) -> None:
    """Each hostile body is refused with its 4xx JSON error, no traceback, nothing stored."""
    response = await client.post(DEPLOYMENTS, data=body, headers={**bearer(), **headers})
    error = await assert_error(response, status, code)
    assert "Traceback" not in json.dumps(error)
    listing = await client.get(DEPLOYMENTS, headers=bearer())
    assert listing.status == 200 and await listing.json() == []


async def test_nul_in_the_query_string_is_refused(client: Client) -> None:
    """A NUL character in a query-string field is a 400, not a stored record."""
    response = await client.post(f"{DEPLOYMENTS}?version=v%00", headers=bearer())
    await assert_error(response, 400, "malformed_body")


async def test_a_1000_key_meta_data_is_still_accepted(client: Client) -> None:
    """meta_data up to the 1,000-key cap is recorded."""
    body = _meta(json.dumps({f"k{i}": i for i in range(1000)}).encode())
    response = await client.post(DEPLOYMENTS, data=body, headers={**bearer(), **JSON_TYPE})
    assert response.status == 201, await response.text()
