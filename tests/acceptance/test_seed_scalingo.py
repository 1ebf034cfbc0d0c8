"""Every request example of Scalingo's deployments API document (v1), as its curl commands
send them (host and token replaced), against a running relay; and a Scalingo-style
client of the live deployments stream."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from yarl import URL

from relay.api.keys import FEED
from relay.app import create_app
from tests.acceptance.api import WIRE_TIME, Client, bearer, create
from tests.acceptance.feed_support import feed_settings, ws_closed
from tests.delivery_support import eventually
from tests.support import CI_TOKEN, READ_TOKEN

JSON_HEADERS = {
    "Accept": "application/json",
    "Content-Type": "application/json",
    "Authorization": f"Bearer {CI_TOKEN}",
}
# The two POST examples' bodies, as the document writes them.
GITHUB_BODY = """{
       "deployment": {
         "git_ref": "master",
         "source_url": "https://github.com/Scalingo/sample-go-martini/archive/master.tar.gz"
       }
     }"""
ARCHIVE_BODY = GITHUB_BODY.replace('"master",', '"v0.0.2",')
DEPLOYMENT_FIELDS = {
    "id",
    "app_id",
    "created_at",
    "finished_at",
    "status",
    "git_ref",
    "previous_git_ref",
    "duration",
    "image_size",
    "stack_base_image",
    "pusher",
    "links",
}
OUTPUT = "-----> Buildpack version 1.2.0\n       Bundle completed (2.64s)\n"


async def _trigger(client: Client, body: str, app: str = "example-app") -> dict[str, Any]:
    response = await client.post(f"/v1/apps/{app}/deployments", data=body, headers=JSON_HEADERS)
    assert response.status == 200, await response.text()
    answer = await response.json()
    assert list(answer) == ["deployment"]
    view: dict[str, Any] = answer["deployment"]
    return view


async def _assert_output_link_works(client: Client, view: dict[str, Any]) -> None:
    url = URL(view["links"]["output"])
    assert url.absolute and (url.host, url.port) == (client.host, client.port)
    response = await client.get(url.path, headers={"Authorization": f"Bearer {CI_TOKEN}"})
    assert response.status == 200 and response.content_type == "text/plain"


async def test_trigger_examples_record_building_deployments(client: Client) -> None:
    """Both POST examples record a `building` deployment answered in the document's shape;
    the second knows the first as its previous git_ref."""
    first = await _trigger(client, GITHUB_BODY)
    assert set(first) == DEPLOYMENT_FIELDS | {"type"}
    assert (first["status"], first["git_ref"], first["app_id"]) == (
        "building",
        "master",
        "example-app",
    )
    assert (first["finished_at"], first["duration"], first["previous_git_ref"]) == (None, 0, None)
    assert (first["image_size"], first["stack_base_image"]) == (None, None)
    assert first["pusher"] == {"email": None, "id": "ci", "username": "ci"}
    assert WIRE_TIME.match(first["created_at"])
    await _assert_output_link_works(client, first)
    second = await _trigger(client, ARCHIVE_BODY)
    assert (second["git_ref"], second["previous_git_ref"], second["type"]) == (
        "v0.0.2",
        "master",
        "archive",
    )


async def test_list_and_get_examples(client: Client) -> None:
    """The list example answers deployments and meta.pagination; the get example one
    deployment; both with the document's fields."""
    await create(client, "example-app", {"version": "v1", "commit_sha": "abcdef1234567890"})
    listed = await client.get("/v1/apps/example-app/deployments", headers=JSON_HEADERS)
    assert listed.status == 200
    body = await listed.json()
    assert list(body) == ["deployments", "meta"]
    assert body["meta"] == {
        "pagination": {
            "current_page": 1,
            "prev_page": None,
            "next_page": None,
            "total_pages": 1,
            "total_count": 1,
        }
    }
    (item,) = body["deployments"]
    assert set(item) == DEPLOYMENT_FIELDS
    assert (item["status"], item["git_ref"]) == ("success", "abcdef1234567890")
    got = await client.get(f"/v1/apps/example-app/deployments/{item['id']}", headers=JSON_HEADERS)
    assert got.status == 200
    assert await got.json() == {"deployment": item}


async def test_listing_pages(client: Client) -> None:
    """page/per_page walk the deployments newest first."""
    for n in range(3):
        await create(client, "example-app", {"version": f"v{n}"})
    response = await client.get(
        "/v1/apps/example-app/deployments?page=2&per_page=2", headers=JSON_HEADERS
    )
    body = await response.json()
    assert [d["git_ref"] for d in body["deployments"]] == ["v0"]
    assert body["meta"]["pagination"] == {
        "current_page": 2,
        "prev_page": 1,
        "next_page": None,
        "total_pages": 2,
        "total_count": 3,
    }


async def test_output_example_is_text_plain(client: Client) -> None:
    """The output example (Accept: text/plain) answers the deployment's log as text/plain."""
    view = await _trigger(client, GITHUB_BODY)
    appended = await client.post(
        f"/components/example-app/deployments/{view['id']}/output",
        data=OUTPUT,
        headers={**bearer(), "Content-Type": "text/plain"},
    )
    assert appended.status == 200
    response = await client.get(
        f"/v1/apps/example-app/deployments/{view['id']}/output",
        headers={"Accept": "text/plain", "Authorization": f"Bearer {CI_TOKEN}"},
    )
    assert response.status == 200 and response.content_type == "text/plain"
    assert await response.text() == OUTPUT


async def test_reset_cache_example_is_204(client: Client) -> None:
    """The cache reset example answers 204 No Content (relay keeps no build cache)."""
    response = await client.delete("/v1/apps/my-app/caches/deployment", headers=JSON_HEADERS)
    assert response.status == 204 and await response.read() == b""
    denied = await client.delete(
        "/v1/apps/my-app/caches/deployment", headers={"Authorization": f"Bearer {READ_TOKEN}"}
    )
    assert denied.status == 403
    invalid = await client.delete("/v1/apps/My%20App/caches/deployment", headers=JSON_HEADERS)
    assert invalid.status == 422  # as every other /v1/apps/{app} path answers
    assert (await invalid.json())["error"]["code"] == "validation_error"


async def test_bad_bodies_and_unknown_ids(client: Client) -> None:
    """A POST with neither git_ref nor source_url is a 422; unknown ids and apps are 404."""
    empty = await client.post(
        "/v1/apps/example-app/deployments", data='{"deployment": {}}', headers=JSON_HEADERS
    )
    assert empty.status == 422
    no_object = await client.post(
        "/v1/apps/example-app/deployments", data='{"git_ref": "x"}', headers=JSON_HEADERS
    )
    assert no_object.status == 422
    assert (await no_object.json())["error"]["details"][0]["field"] == "deployment"
    for path in ("/v1/apps/nothing-here", "/v1/apps/example-app/deployments/nope"):
        response = await client.get(path, headers=JSON_HEADERS)
        assert response.status == 404, path


StartRelay = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def relay(aiohttp_client: AiohttpClient, tmp_path: Path) -> StartRelay:
    """Start a relay with `[feed]` options (e.g. a quick ping) and `[server]` ones."""

    async def start(server: dict[str, Any] | None = None, **feed: Any) -> TestClient[Any, Any]:
        settings = feed_settings(tmp_path / "relay.db", **feed)
        if server:
            settings = settings.model_copy(
                update={"server": settings.server.model_copy(update=server)}
            )
        return await aiohttp_client(create_app(settings))

    return start


async def _stream_url(client: Client, app: str, **headers: str) -> URL:
    response = await client.get(f"/v1/apps/{app}", headers={**JSON_HEADERS, **headers})
    assert response.status == 200, await response.text()
    body = await response.json()
    assert list(body) == ["app"] and body["app"]["name"] == app
    return URL(body["app"]["links"]["deployments_stream"])


async def test_app_links_to_a_websocket_url(relay: StartRelay) -> None:
    """GET /v1/apps/{app} links a ws:// URL of relay; a trusted proxy's X-Forwarded-Proto
    and -Host make it wss:// on the proxy's host; an untrusted peer's are ignored."""
    client = await relay()
    await create(client, "example-app", {"version": "v1"})
    url = await _stream_url(client, "example-app")
    assert (url.scheme, url.host, url.port) == ("ws", client.host, client.port)
    assert url.path == "/v1/apps/example-app/deployments_stream"
    proxied = await _stream_url(
        client, "example-app", **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "relay.example"}
    )
    assert str(proxied) == "wss://relay.example/v1/apps/example-app/deployments_stream"
    untrusted = await relay(server={"trusted_proxies": ["192.0.2.0/24"]})
    ignored = await _stream_url(
        untrusted, "example-app", **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil"}
    )
    assert (ignored.scheme, ignored.host) == ("ws", untrusted.host)


async def test_a_host_header_that_is_no_host_makes_no_link(relay: StartRelay) -> None:
    """A Host (or trusted X-Forwarded-Host) that is no host and port ("evil.example/x?",
    port 99999) is not pasted into the links: they name the address relay was reached on."""
    client = await relay()
    await create(client, "example-app", {"version": "v1"})
    for headers in (
        {"Host": "evil.example/x?"},
        {"Host": "relay.example:99999"},
        {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "relay.example:99999"},
    ):
        url = await _stream_url(client, "example-app", **headers)
        assert (url.host, url.port) == (client.host, client.port), headers
        assert url.path == "/v1/apps/example-app/deployments_stream", headers


async def test_scalingo_client_gets_the_documented_frames(relay: StartRelay) -> None:
    """A Scalingo-style client (URL from the app, auth frame first) gets the log so far,
    then new, log and status frames of a deployment, and pings, in the document's shape."""
    client = await relay(ping_interval="0.3s")
    first = await _trigger(client, GITHUB_BODY)
    output = f"/components/example-app/deployments/{first['id']}/output"
    await client.post(
        output, data="earlier line\n", headers={**bearer(), "Content-Type": "text/plain"}
    )
    ws = await client.session.ws_connect(await _stream_url(client, "example-app"))
    await ws.send_json({"type": "auth", "data": {"token": READ_TOKEN}})
    assert json.loads((await ws.receive(timeout=5)).data) == {
        "type": "log",
        "id": first["id"],
        "data": {"content": "earlier line"},
    }
    await eventually(lambda: len(client.server.app[FEED].live) == 1)
    second = await _trigger(client, ARCHIVE_BODY)
    path = f"/components/example-app/deployments/{second['id']}"
    await client.post(
        path + "/output",
        data="Bundle completed (2.64s)\n",
        headers={**bearer(), "Content-Type": "text/plain"},
    )
    patched = await client.patch(path, json={"status": "success"}, headers=bearer())
    assert patched.status == 200
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < 4:
        raw = json.loads((await ws.receive(timeout=5)).data)
        seen.setdefault(raw["type"], raw)
    assert seen["new"] == {"type": "new", "data": {"deployment": second["id"]}}
    assert seen["log"] == {
        "type": "log",
        "id": second["id"],
        "data": {"content": "Bundle completed (2.64s)"},
    }
    assert seen["status"] == {"type": "status", "id": second["id"], "data": {"status": "success"}}
    ping = seen["ping"]
    assert list(ping) == ["type", "data"] and list(ping["data"]) == ["ts"]
    assert isinstance(ping["data"]["ts"], int) and abs(ping["data"]["ts"] - time.time()) < 5
    await ws.close()


async def test_bad_token_ends_the_socket_at_once(relay: StartRelay) -> None:
    """An auth frame with an unknown token: the socket is closed, no frame is sent."""
    client = await relay()
    await create(client, "example-app", {"version": "v1"})
    ws = await client.session.ws_connect(await _stream_url(client, "example-app"))
    await ws.send_json({"type": "auth", "data": {"token": "not-a-token"}})
    code, _ = await ws_closed(ws)
    assert code == 1008
    plain = await client.get("/v1/apps/example-app/deployments_stream")
    assert plain.status == 426
