"""Every error is a JSON body with the right status: never HTML, never a 500."""

from __future__ import annotations

import io
import json
from typing import Any

import aiohttp
import pytest
from yarl import URL

from tests.acceptance.api import Client, assert_error, bearer, create, get_json, post_json
from tests.acceptance.conftest import MakeClient

DEPLOYMENTS = "/components/api/deployments"
JSON = {"Content-Type": "application/json", **bearer()}


async def _count(client: Client) -> int:
    return len(await get_json(client, f"{DEPLOYMENTS}?limit=500"))


async def test_missing_version_is_422_naming_the_field(client: Client) -> None:
    """A deployment without version answers 422 with details naming `version`."""
    response = await post_json(client, DEPLOYMENTS, {"stage": "production"})
    error = await assert_error(response, 422, "validation_error")
    assert [d["field"] for d in error["details"]] == ["version"]
    assert all(d["message"] for d in error["details"])
    assert await _count(client) == 0


async def test_empty_body_and_no_query_is_422(client: Client) -> None:
    """A POST with nothing at all is a missing version, not a crash."""
    response = await client.post(DEPLOYMENTS, headers=bearer())
    error = await assert_error(response, 422, "validation_error")
    assert [d["field"] for d in error["details"]] == ["version"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"version": ',
        b'{"version": "v1",}',
        b"[1, 2, 3]",
        b'{"version": "v1", "meta_data": {"x": NaN}}',
        b'{"version": "\xff\xfe"}',
        b"[" * 50_000,
    ],
    ids=["truncated", "trailing-comma", "array", "nan", "not-utf8", "deep"],
)
async def test_malformed_json_is_400(client: Client, body: bytes) -> None:
    """A body that is not a JSON object answers 400 malformed_body."""
    response = await client.post(DEPLOYMENTS, data=body, headers=JSON)
    await assert_error(response, 400, "malformed_body")
    assert await _count(client) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": 123}, "version"),
        ({"version": ""}, "version"),
        ({"version": "v" * 201}, "version"),
        ({"version": "v1", "meta_data": "x"}, "meta_data"),
        ({"version": "v1", "started_at": "last tuesday"}, "started_at"),
        ({"version": "v1", "finished_at": {"when": "now"}}, "finished_at"),
        ({"version": "v1", "status": "exploded"}, "status"),
        ({"version": "v1", "stage": ["production"]}, "stage"),
    ],
)
async def test_wrong_types_are_422(client: Client, body: dict[str, Any], field: str) -> None:
    """A field of the wrong type or shape answers 422 naming that field."""
    response = await post_json(client, DEPLOYMENTS, body)
    error = await assert_error(response, 422, "validation_error")
    assert [d["field"] for d in error["details"]] == [field]


async def test_deeply_nested_meta_data_is_422(client: Client) -> None:
    """meta_data nested hundreds of levels deep is refused (422), not a 500."""
    depth = 300
    body = '{"version": "v1", "meta_data": ' + '{"a": ' * depth + "1" + "}" * depth + "}"
    response = await client.post(DEPLOYMENTS, data=body, headers=JSON)
    error = await assert_error(response, 422, "validation_error")
    assert [d["field"] for d in error["details"]] == ["meta_data"]


async def test_query_string_meta_data_of_wrong_shape_is_422(client: Client) -> None:
    """`meta_data=x` without brackets in a query string is a validation error."""
    response = await client.post(f"{DEPLOYMENTS}?version=v1&meta_data=x", headers=bearer())
    error = await assert_error(response, 422, "validation_error")
    assert [d["field"] for d in error["details"]] == ["meta_data"]


async def test_body_over_the_limit_is_413(make_client: MakeClient) -> None:
    """A body larger than server.max_body_bytes answers 413 and records nothing."""
    client = await make_client(server={"max_body_bytes": 2048})
    big = {"version": "v1", "meta_data": {"blob": "x" * 4096}}
    response = await post_json(client, DEPLOYMENTS, big)
    await assert_error(response, 413, "body_too_large")
    small = await post_json(client, DEPLOYMENTS, {"version": "v1", "meta_data": {"b": "x" * 900}})
    assert small.status == 201
    assert await _count(client) == 1


async def test_default_limit_is_one_mebibyte(client: Client) -> None:
    """With default settings a body just over 1 MiB answers 413."""
    big = json.dumps({"version": "v1", "meta_data": {"blob": "x" * (1024 * 1024)}})
    response = await client.post(DEPLOYMENTS, data=io.BytesIO(big.encode()), headers=JSON)
    await assert_error(response, 413, "body_too_large")


@pytest.mark.parametrize("multipart", [False, True], ids=["urlencoded", "multipart"])
async def test_form_body_over_the_limit_is_413(make_client: MakeClient, multipart: bool) -> None:
    """A form body larger than the limit answers 413 too."""
    client = await make_client(server={"max_body_bytes": 2048})
    form = aiohttp.FormData(
        [("version", "v1"), ("meta_data[blob]", "x" * 4096)], default_to_multipart=multipart
    )
    response = await client.post(DEPLOYMENTS, data=form, headers=bearer())
    await assert_error(response, 413, "body_too_large")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/xml", b"<deployment><version>v1</version></deployment>"),
        ("text/plain", b"version v1"),
        ("application/octet-stream", b"\x00\x01\x02"),
    ],
)
async def test_unsupported_content_type_is_415(
    client: Client, content_type: str, body: bytes
) -> None:
    """A non-JSON body of a type relay does not read answers 415."""
    response = await client.post(
        DEPLOYMENTS, data=body, headers={"Content-Type": content_type, **bearer()}
    )
    error = await assert_error(response, 415, "unsupported_media_type")
    assert content_type in error["message"]


async def test_json_body_is_read_whatever_its_declared_type(client: Client) -> None:
    """A JSON object body is accepted even when declared text/plain (curl users forget -H)."""
    response = await client.post(
        DEPLOYMENTS, data=b'{"version": "v1"}', headers={"Content-Type": "text/plain", **bearer()}
    )
    assert response.status == 201


@pytest.mark.parametrize(
    "slug",
    ["Bad%20Slug!", "MyApp", "-dash-first", "a" * 101, "api%0A", "caf%C3%A9"],
    ids=["space-bang", "uppercase", "dash-first", "too-long", "newline", "unicode"],
)
async def test_bad_slug_is_422_on_component(client: Client, slug: str) -> None:
    """An invalid component slug answers 422 naming `component`, for POST and GET."""
    url = URL(f"/components/{slug}/deployments", encoded=True)
    response = await client.post(url, json={"version": "v1"}, headers=bearer())
    error = await assert_error(response, 422, "validation_error")
    assert [d["field"] for d in error["details"]] == ["component"]
    response = await client.get(url, headers=bearer())
    await assert_error(response, 422, "validation_error")
    assert await get_json(client, "/components") == []


@pytest.mark.parametrize("path", ["/nope", "/components/api/deploys", "/api/v0/anything"])
async def test_unknown_route_is_404_json(client: Client, path: str) -> None:
    """An unknown path answers 404 JSON, with or without a token."""
    await assert_error(await client.get(path), 404, "not_found")
    await assert_error(await client.get(path, headers=bearer()), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", DEPLOYMENTS, {"GET", "POST"}),
        ("PUT", DEPLOYMENTS + "/", {"GET", "POST"}),
        ("POST", "/healthz", {"GET"}),
        ("POST", "/components", {"GET"}),
    ],
)
async def test_wrong_method_is_405_json(
    client: Client, method: str, path: str, allowed: set[str]
) -> None:
    """A known path with the wrong method answers 405 JSON and an Allow header."""
    response = await client.request(method, path, headers=bearer())
    error = await assert_error(response, 405, "method_not_allowed")
    assert set(error["allowed_methods"]) >= allowed
    assert set(response.headers["Allow"].split(", ")) == set(error["allowed_methods"])


async def test_head_answers_like_get_without_a_body(client: Client) -> None:
    """HEAD (what uptime monitors send) gets GET's status and headers and no body; the
    live feeds, which would stay open, answer 405 to it."""
    await create(client, "api", {"version": "v1"})
    for path, headers, status in (
        ("/healthz", {}, 200),
        (DEPLOYMENTS, {}, 401),
        (DEPLOYMENTS, bearer(), 200),
        ("/components/api/badge.svg", bearer(), 200),
    ):
        got = await client.get(path, headers=headers)
        head = await client.head(path, headers=headers)
        assert (head.status, path) == (status, path)
        assert head.status == got.status
        assert head.headers["Content-Type"] == got.headers["Content-Type"]
        assert await head.read() == b""
    for feed in ("/events", "/stream"):
        response = await client.head(feed, headers=bearer())
        assert response.status == 405, feed


async def test_strict_components_refuses_unknown_components(
    make_client: MakeClient,
) -> None:
    """With strict_components, an unknown component answers 404; a known one works."""
    lenient = await make_client()
    await create(lenient, "known", {"version": "v1"})
    strict = await make_client(server={"strict_components": True})
    response = await post_json(strict, "/components/unknown/deployments", {"version": "v1"})
    error = await assert_error(response, 404, "not_found")
    assert "unknown" in error["message"]
    response = await post_json(strict, "/components/known/deployments", {"version": "v2"})
    assert response.status == 201
    assert [c["slug"] for c in await get_json(strict, "/components")] == ["known"]


async def test_error_answers_are_json_even_when_html_is_preferred(client: Client) -> None:
    """A browser asking for HTML still gets a JSON error, never an HTML page."""
    response = await client.get("/nope", headers={"Accept": "text/html"})
    await assert_error(response, 404, "not_found")
    response = await client.get(DEPLOYMENTS, headers={"Accept": "text/html"})
    await assert_error(response, 401, "unauthenticated")
