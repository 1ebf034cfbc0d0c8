"""Small helpers to talk to the relay under test the way a client would."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from yarl import URL

from tests.support import CI_TOKEN

Client = TestClient[Any, Any]
WIRE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def bearer(token: str = CI_TOKEN) -> dict[str, str]:
    """The Authorization header of `token`."""
    return {"Authorization": f"Bearer {token}"}


async def post_json(
    client: Client,
    path: str,
    body: dict[str, Any],
    token: str = CI_TOKEN,
    headers: dict[str, str] | None = None,
) -> ClientResponse:
    """POST `body` as application/json."""
    return await client.post(
        path,
        data=json.dumps(body),
        headers={"Content-Type": "application/json", **bearer(token), **(headers or {})},
    )


async def create(
    client: Client, component: str, body: dict[str, Any], kind: str = "deployments"
) -> str:
    """Record one deployment (or build) and return its id."""
    response = await post_json(client, f"/components/{component}/{kind}", body)
    assert response.status == 201, await response.text()
    record_id: str = (await response.json())["id"]
    uuid.UUID(record_id)
    return record_id


async def get_json(client: Client, path: str, token: str = CI_TOKEN) -> Any:
    """GET `path` and return its JSON body (asserting 200)."""
    response = await client.get(path, headers=bearer(token))
    assert response.status == 200, await response.text()
    return await response.json()


def next_link(response: ClientResponse) -> str | None:
    """The URL of the `Link: <...>; rel="next"` header, if any."""
    header = response.headers.get("Link")
    if header is None:
        return None
    match = re.fullmatch(r'<([^>]+)>; rel="next"', header)
    assert match is not None, header
    return match.group(1)


def on_server(client: Client, link: str) -> URL:
    """An absolute link of the relay as the path + query the test client requests."""
    url = URL(link)
    assert url.absolute and url.host == client.host and url.port == client.port, link
    return url.relative()


async def list_all(
    client: Client, path: str, token: str = CI_TOKEN, headers: dict[str, str] | None = None
) -> tuple[list[Any], int]:
    """Follow the Link headers from `path` to the end: every item and the number of pages."""
    items: list[Any] = []
    pages = 0
    url: str | URL | None = path
    while url is not None:
        response = await client.get(url, headers={**bearer(token), **(headers or {})})
        assert response.status == 200, await response.text()
        page = await response.json()
        assert isinstance(page, list)
        items += page
        pages += 1
        link = next_link(response)
        url = None if link is None else on_server(client, link)
        assert pages < 1000
    return items, pages


async def assert_error(response: ClientResponse, status: int, code: str | None = None) -> Any:
    """The response is a JSON error body with `status` (and `code`); returns the error."""
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/json", text
    assert "<html" not in text.lower()
    error = json.loads(text)["error"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    assert response.headers.get("X-Request-ID")
    return error
