"""Inputs that once answered 500: each is now a 4xx JSON error naming what is wrong."""

from __future__ import annotations

import gzip
import json

import pytest

from tests.acceptance.api import Client, assert_error, bearer, post_json
from tests.support import ADMIN_TOKEN

DEPLOYMENTS = "/components/api/deployments"
JSON_TYPE = {"Content-Type": "application/json"}
FORM_TYPE = {"Content-Type": "application/x-www-form-urlencoded"}


def _fields(error: dict[str, object]) -> list[object]:
    details = error.get("details") or []
    assert isinstance(details, list)
    return [d["field"] for d in details]


@pytest.mark.parametrize(
    "value", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-01:00"]
)
async def test_a_timestamp_that_overflows_in_utc_is_a_422_naming_the_field(
    client: Client, value: str
) -> None:
    """A time that has no UTC equivalent within years 1-9999 is refused, naming the field."""
    response = await post_json(client, DEPLOYMENTS, {"version": "v1", "started_at": value})
    error = await assert_error(response, 422, "validation_error")
    assert _fields(error) == ["started_at"]


async def test_a_patch_with_an_overflowing_time_is_a_422(client: Client) -> None:
    """PATCH finished_at=0001-01-01T00:00:00+05:00 is refused naming finished_at."""
    created = await post_json(client, DEPLOYMENTS, {"version": "v1", "status": "starting"})
    assert created.status == 201, await created.text()
    location = created.headers["Location"]
    response = await client.patch(
        location,
        data=json.dumps({"status": "success", "finished_at": "0001-01-01T00:00:00+05:00"}),
        headers={**bearer(), **JSON_TYPE},
    )
    error = await assert_error(response, 422, "validation_error")
    assert "finished_at" in _fields(error)


@pytest.mark.parametrize("path", [DEPLOYMENTS, "/deliveries"])
async def test_since_that_overflows_is_a_422(client: Client, path: str) -> None:
    """`since=9999-12-31T23:59:59-01:00` on a list is refused naming `since`."""
    response = await client.get(
        path,
        params={"since": "9999-12-31T23:59:59-01:00"},
        headers=bearer(ADMIN_TOKEN),
    )
    error = await assert_error(response, 422, "validation_error")
    assert _fields(error) == ["since"]


async def test_a_replay_window_that_overflows_is_a_422(client: Client) -> None:
    """A replay window whose end overflows in UTC is refused naming `until`."""
    response = await post_json(
        client,
        "/forwarders/any/replay",
        {"since": "2020-01-01T00:00:00Z", "until": "9999-12-31T23:59:59-01:00"},
        token=ADMIN_TOKEN,
    )
    error = await assert_error(response, 422, "validation_error")
    assert _fields(error) == ["until"]


async def test_a_gzip_body_that_is_not_gzip_is_a_400(client: Client) -> None:
    """`Content-Encoding: gzip` on a plain body is a malformed body, not a 500."""
    response = await client.post(
        DEPLOYMENTS,
        data=b'{"version": "v1"}',
        headers={**bearer(), **JSON_TYPE, "Content-Encoding": "gzip"},
    )
    await assert_error(response, 400, "malformed_body")


async def test_a_real_gzip_body_is_read(client: Client) -> None:
    """A gzip-compressed JSON body is decompressed and recorded."""
    response = await client.post(
        DEPLOYMENTS,
        data=gzip.compress(b'{"version": "v1"}'),
        headers={**bearer(), **JSON_TYPE, "Content-Encoding": "gzip"},
    )
    assert response.status == 201, await response.text()


async def test_an_unknown_content_encoding_is_a_415(client: Client) -> None:
    """`Content-Encoding: x-bogus` is refused as unsupported instead of being read as plain."""
    response = await client.post(
        DEPLOYMENTS,
        data=b'{"version": "v1"}',
        headers={**bearer(), **JSON_TYPE, "Content-Encoding": "x-bogus"},
    )
    error = await assert_error(response, 415, "unsupported_content_encoding")
    assert "x-bogus" in error["message"]


async def test_deep_nesting_with_an_idempotency_key_is_a_4xx(client: Client) -> None:
    """A deeply nested unknown field with an Idempotency-Key is refused, not a 500 from the
    request fingerprint."""
    body = b'{"version": "v1", "extra": ' + b"[" * 900 + b"]" * 900 + b"}"
    response = await client.post(
        DEPLOYMENTS, data=body, headers={**bearer(), **JSON_TYPE, "Idempotency-Key": "k-1"}
    )
    assert 400 <= response.status < 500, await response.text()
    await assert_error(response, response.status)


async def test_a_300000_deep_form_body_is_a_400(client: Client) -> None:
    """`meta_data[a][a]...` 300,000 levels deep is refused as malformed."""
    body = b"version=v1&meta_data" + b"[a]" * 300_000 + b"=1"
    response = await client.post(DEPLOYMENTS, data=body, headers={**bearer(), **FORM_TYPE})
    error = await assert_error(response, 400, "malformed_body")
    assert "deep" in error["message"]


async def test_a_multipart_field_name_over_the_line_limit_is_a_400(client: Client) -> None:
    """A multipart part whose header is longer than the parser takes is a malformed body."""
    boundary = "b0undary"
    name = "meta_data" + "[a]" * 3000
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n1\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    response = await client.post(
        DEPLOYMENTS,
        data=body,
        headers={**bearer(), "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    await assert_error(response, 400, "malformed_body")
