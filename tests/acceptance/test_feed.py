"""The live feed on a whole relay (SQLite file, real HTTP): `GET /events` (SSE) and
`GET /stream` (WebSocket) show a deployment's life as it happens, resume from the store
after a disconnect, authenticate and filter, and never let a slow client hold ingest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSCloseCode
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from relay.api.keys import FEED, STORE
from relay.app import create_app
from relay.auth import generate_token, new_token_record
from relay.errors import StoreError
from relay.standins.webhook import WebhookReceiver
from relay.store.feed_base import FeedCursor, FeedPage
from tests.acceptance.api import assert_error, bearer, create, post_json
from tests.acceptance.feed_support import (
    Received,
    SseReader,
    feed_settings,
    ws_closed,
    ws_frame,
    ws_frames,
)
from tests.delivery_support import SECRET, eventually, webhook
from tests.support import CI_TOKEN, READ_TOKEN, WEB_TOKEN, WRITE_TOKEN

Client = TestClient[Any, Any]
StartRelay = Callable[..., Awaitable[Client]]


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    """A Standard Webhooks receiver on loopback."""
    recv = WebhookReceiver(SECRET)
    await recv.start()
    yield recv
    await recv.stop()


@pytest.fixture
def relay(aiohttp_client: AiohttpClient, tmp_path: Path) -> StartRelay:
    """Start a relay on a SQLite file with the given forwarders and `[feed]` options."""

    async def start(forwarders: list[dict[str, Any]] | None = None, **feed: Any) -> Client:
        return await aiohttp_client(
            create_app(feed_settings(tmp_path / "relay.db", forwarders, **feed))
        )

    return start


async def sse(client: Client, query: str = "", token: str = CI_TOKEN, **headers: str) -> SseReader:
    """Open `GET /events` and check it is an event stream."""
    response = await client.get(f"/events{query}", headers={**bearer(token), **headers})
    assert response.status == 200, await response.text()
    assert response.content_type == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    return SseReader(response)


async def subscribed(client: Client, count: int) -> None:
    """Wait until `count` streams are live (so that nothing recorded after is missed)."""
    await eventually(lambda: len(client.server.app[FEED].live) == count)


async def lifecycle(client: Client, component: str = "api", stage: str = "production") -> str:
    """queued → building, two output lines, → success, over the HTTP API; the deployment id."""
    deployment_id = await create(
        client, component, {"version": "2.0.0", "stage": stage, "status": "queued"}
    )
    path = f"/components/{component}/deployments/{deployment_id}"
    patch = await client.patch(path, json={"status": "building"}, headers=bearer())
    assert patch.status == 200, await patch.text()
    output = await client.post(
        path + "/output",
        data="Step 1/2: compiling\nStep 2/2: done\n",
        headers={**bearer(), "Content-Type": "text/plain"},
    )
    assert output.status == 200, await output.text()
    done = await client.patch(path, json={"status": "success"}, headers=bearer())
    assert done.status == 200, await done.text()
    return deployment_id


def check_life(frames: list[Received], deployment_id: str) -> None:
    """The frames of `lifecycle`, in order, with increasing ids."""
    assert [f.type for f in frames] == ["new", "status", "log", "log", "status", "delivery"]
    new, building, log1, log2, success, delivery = frames
    assert new.data["deployment"]["id"] == deployment_id
    assert new.data["event_type"] == "deployment.started"
    assert new.data["deployment"]["status"] == "queued"
    assert (building.data["status"], success.data["status"]) == ("building", "success")
    assert success.data["event_type"] == "deployment.completed"
    assert [log1.data["content"], log2.data["content"]] == ["Step 1/2: compiling", "Step 2/2: done"]
    assert log1.data["deployment_id"] == deployment_id and log1.data["stage"] == "production"
    assert delivery.data["event_type"] == "deployment.completed"
    assert {k: delivery.data[k] for k in ("forwarder", "outcome", "status_code")} == {
        "forwarder": "hook",
        "outcome": "delivered",
        "status_code": 200,
    }
    positions = [tuple(int(p) for p in (f.id or "").split("-")) for f in frames]
    assert positions == sorted(positions) and len(set(positions)) == len(frames)


def completed_only(receiver: WebhookReceiver) -> list[dict[str, Any]]:
    """A webhook forwarder to `receiver` that gets `deployment.completed` only (so that the
    one delivery comes after every other frame)."""
    return [webhook("hook", receiver.endpoint, match={"events": ["deployment.completed"]})]


async def test_sse_and_websocket_show_a_deployment_life_in_order(
    relay: StartRelay, receiver: WebhookReceiver
) -> None:
    """An SSE client and a WebSocket client both get new, status, log, status and delivery
    frames for one deployment, in order, with the same ids and data."""
    client = await relay(completed_only(receiver))
    events = await sse(client)
    ws = await client.ws_connect("/stream")
    await ws.send_json({"type": "auth", "data": {"token": READ_TOKEN}})
    await subscribed(client, 2)

    deployment_id = await lifecycle(client)

    over_sse = await events.frames(6)
    over_ws = await ws_frames(ws, 6)
    check_life(over_sse, deployment_id)
    assert over_ws == over_sse
    assert len(receiver.events) == 1
    await ws.close()


async def test_sse_resumes_from_the_store_after_a_disconnect(
    relay: StartRelay, receiver: WebhookReceiver
) -> None:
    """Reconnecting with `Last-Event-ID` replays every frame missed while away (new,
    status, log and delivery alike), then continues live: nothing lost, nothing twice."""
    client = await relay(completed_only(receiver))
    watcher = await sse(client)  # stays connected: the reference of what happened
    leaver = await sse(client)
    await subscribed(client, 2)
    first = await create(client, "api", {"version": "1.0.0"})
    (seen,) = await leaver.frames(1)
    assert seen.data["deployment"]["id"] == first
    leaver.response.close()

    missed = await lifecycle(client)
    reference = await watcher.frames(7)
    check_life(reference[1:], missed)

    back = await sse(client, **{"Last-Event-ID": seen.id or ""})
    assert await back.frames(6) == reference[1:]
    later = await create(client, "web", {"version": "3.0.0"})
    (live,) = await back.frames(1)
    assert live.data["deployment"]["id"] == later
    assert live == (await watcher.frames(1))[0]


async def test_resuming_works_across_a_restart(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    """Ids point into the database: a relay started afresh on it replays from them."""
    settings = feed_settings(tmp_path / "relay.db")
    first = await aiohttp_client(create_app(settings))
    events = await sse(first)
    await subscribed(first, 1)
    await create(first, "api", {"version": "1"})
    (seen,) = await events.frames(1)
    missed = [await create(first, "api", {"version": f"v{i}"}) for i in range(2)]
    await first.close()

    second = await aiohttp_client(create_app(settings))
    back = await sse(second, **{"Last-Event-ID": seen.id or ""})
    frames = await back.frames(2)
    assert [f.data["deployment"]["id"] for f in frames] == missed


async def test_websocket_resumes_with_last_event_id_in_the_query(relay: StartRelay) -> None:
    """A WebSocket opened with `?last_event_id=` first replays what came after that id."""
    client = await relay()
    ids = [await create(client, "api", {"version": f"v{i}"}) for i in range(3)]
    ws = await client.ws_connect(f"/stream?access_token={CI_TOKEN}&last_event_id=1-0-0")
    frames = await ws_frames(ws, 2)
    assert [f.data["deployment"]["id"] for f in frames] == ids[1:]
    assert [f.id for f in frames] == ["2-0-0", "3-0-0"]
    await ws.close()


@pytest.mark.parametrize(
    ("how", "token"),
    [("query", "no-such-token"), ("header", "no-such-token"), ("frame", "no-such-token")],
)
async def test_a_bad_websocket_token_closes_with_policy_violation(
    relay: StartRelay, how: str, token: str
) -> None:
    """An unknown token, in the upgrade request or in the auth frame, closes with 1008."""
    client = await relay()
    if how == "query":
        ws = await client.ws_connect(f"/stream?access_token={token}")
    elif how == "header":
        ws = await client.ws_connect("/stream", headers=bearer(token))
    else:
        ws = await client.ws_connect("/stream")
        await ws.send_json({"type": "auth", "data": {"token": token}})
    code, reason = await ws_closed(ws)
    assert code == WSCloseCode.POLICY_VIOLATION
    assert "unknown or revoked" in reason
    assert not client.server.app[FEED].members


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        ('{"type": "subscribe"}', "expected"),
        ("not json", "expected"),
        ('{"type": "auth", "data": {"token": 42}}', "expected"),
        (None, "no auth frame within 0.2s"),
    ],
)
async def test_a_websocket_must_authenticate_first(
    relay: StartRelay, first: str | None, reason: str
) -> None:
    """Without a token in the upgrade, anything but an auth frame in time closes with 1008."""
    client = await relay(auth_timeout="0.2s")
    ws = await client.ws_connect("/stream")
    if first is not None:
        await ws.send_str(first)
    code, text = await ws_closed(ws)
    assert code == WSCloseCode.POLICY_VIOLATION and reason in text


async def test_a_websocket_token_needs_the_read_scope(relay: StartRelay) -> None:
    """A write-only token may not watch: 1008."""
    client = await relay()
    ws = await client.ws_connect("/stream")
    await ws.send_json({"type": "auth", "data": {"token": WRITE_TOKEN}})
    code, text = await ws_closed(ws)
    assert code == WSCloseCode.POLICY_VIOLATION and "events:read" in text


async def test_a_websocket_authenticated_by_its_upgrade_streams_at_once(
    relay: StartRelay,
) -> None:
    """A valid token in the upgrade request (header) needs no auth frame."""
    client = await relay()
    ws = await client.ws_connect("/stream", headers={"Authorization": f"ApiKey {CI_TOKEN}"})
    await subscribed(client, 1)
    deployment_id = await create(client, "api", {"version": "1.0.0"})
    frame = await ws_frame(ws)
    assert (frame.type, frame.data["deployment"]["id"]) == ("new", deployment_id)
    await ws.close()


async def test_filters_by_component_and_stage(relay: StartRelay) -> None:
    """`component` and `stage` (repeated or comma-separated) narrow what a client gets."""
    client = await relay()
    api_prod = await sse(client, "?component=api&stage=production,staging")
    web = await sse(client, "?component=web&component=web-shop")
    await subscribed(client, 2)
    await create(client, "api", {"version": "1", "stage": "dev"})
    wanted = await create(client, "api", {"version": "2", "stage": "production"})
    web_id = await create(client, "web-shop", {"version": "3"})
    assert (await api_prod.frames(1))[0].data["deployment"]["id"] == wanted
    assert (await web.frames(1))[0].data["deployment"]["id"] == web_id
    staging = await create(client, "api", {"version": "4", "stage": "staging"})
    assert (await api_prod.frames(1))[0].data["deployment"]["id"] == staging


async def test_a_token_only_sees_its_components(relay: StartRelay) -> None:
    """A token limited to `web-*` never gets frames of other components."""
    client = await relay()
    events = await sse(client, token=WEB_TOKEN)
    await subscribed(client, 1)
    await create(client, "api", {"version": "1"})
    mine = await create(client, "web-shop", {"version": "1"})
    (frame,) = await events.frames(1)
    assert frame.data["deployment"]["id"] == mine


async def test_http_errors_before_streaming(relay: StartRelay) -> None:
    """No token 401, no read scope 403, a bad Last-Event-ID 422, /stream without an
    upgrade 426: all JSON errors."""
    client = await relay()
    await assert_error(await client.get("/events"), 401, "unauthenticated")
    await assert_error(await client.get("/events", headers=bearer(WRITE_TOKEN)), 403)
    bad_id = await client.get("/events", headers={**bearer(), "Last-Event-ID": "yesterday"})
    await assert_error(bad_id, 422, "validation_error")
    await assert_error(await client.get("/stream", headers=bearer()), 426, "upgrade_required")


async def test_pings_keep_both_streams_alive(relay: StartRelay) -> None:
    """With a tiny `ping_interval`, both protocols get `ping` frames without an id."""
    client = await relay(ping_interval="0.05s")
    events = await sse(client)
    ws = await client.ws_connect(f"/stream?access_token={CI_TOKEN}")
    for frame in [await events.next(), await events.next(), await ws_frame(ws)]:
        assert frame.type == "ping" and frame.id is None and frame.data["at"].endswith("Z")
    await ws.close()


async def test_a_token_revoked_while_watching_is_cut_off(relay: StartRelay) -> None:
    """At the next ping after its token is revoked, a WebSocket closes with 1008 and an
    SSE stream ends."""
    client = await relay(ping_interval="0.05s")
    store = client.server.app[STORE]
    token = generate_token()
    await store.add_token(new_token_record("watcher", token, ["events:read"], ["*"]))
    events = await sse(client, token=token)
    ws = await client.ws_connect(f"/stream?access_token={token}")
    assert (await ws_frame(ws)).type == "ping"
    assert await store.revoke_token("watcher")
    code, reason = await ws_closed(ws)
    assert code == WSCloseCode.POLICY_VIOLATION and "revoked" in reason
    assert await events.ended()


async def test_a_store_failure_ends_streams_cleanly(
    relay: StartRelay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the store fails while replaying, the SSE stream ends and the WebSocket closes
    with 1011, so that clients reconnect later with their last id."""
    client = await relay()

    async def broken(cursor: FeedCursor, limit: int) -> FeedPage:
        raise StoreError("database error: disk I/O error")

    monkeypatch.setattr(client.server.app[STORE], "feed_after", broken)
    events = await sse(client, **{"Last-Event-ID": "0-0-0"})
    assert await events.ended()
    ws = await client.ws_connect(f"/stream?access_token={CI_TOKEN}&last_event_id=0-0-0")
    code, reason = await ws_closed(ws)
    assert code == WSCloseCode.INTERNAL_ERROR and "last_event_id" in reason
    assert not client.server.app[FEED].members


async def test_too_many_subscribers_are_refused(relay: StartRelay) -> None:
    """Past `max_subscribers`, SSE answers 503 and a WebSocket closes with 1013."""
    client = await relay(max_subscribers=1)
    await sse(client)
    await assert_error(await client.get("/events", headers=bearer()), 503, "feed_full")
    ws = await client.ws_connect(f"/stream?access_token={CI_TOKEN}")
    code, _ = await ws_closed(ws)
    assert code == WSCloseCode.TRY_AGAIN_LATER


async def test_shutdown_ends_open_streams(relay: StartRelay) -> None:
    """Stopping the server ends open streams at once (WebSocket code 1001) instead of
    holding the graceful shutdown for its whole timeout."""
    client = await relay()
    events = await sse(client)
    ws = await client.ws_connect(f"/stream?access_token={CI_TOKEN}")
    await subscribed(client, 2)
    closing = asyncio.ensure_future(client.server.close())
    assert (await ws_closed(ws))[0] == WSCloseCode.GOING_AWAY
    assert await events.ended()
    await asyncio.wait_for(closing, 5)


async def test_a_stalled_client_never_holds_ingest_nor_grows_memory(relay: StartRelay) -> None:
    """While an SSE client reads nothing, every POST still completes and the server keeps at
    most `queue_size` frames for it; when it reads again it is told how many it missed."""
    client = await relay(queue_size=5)
    stalled = await sse(client)
    await subscribed(client, 1)
    (subscriber,) = client.server.app[FEED].live
    padding = {"log": "x" * 60_000}  # big frames fill the socket buffers quickly
    peak = 0
    async with asyncio.timeout(60):
        for i in range(300):
            response = await post_json(
                client, "/components/api/deployments", {"version": f"v{i}", "meta_data": padding}
            )
            assert response.status == 201
            peak = max(peak, len(subscriber.queue))
    feed = client.server.app[FEED]
    await eventually(lambda: feed.position is not None and feed.position.events == 300)
    assert max(peak, len(subscriber.queue)) <= 5
    seen: list[Received] = []
    while not any(f.type == "skipped" for f in seen):
        seen.append(await stalled.next())
    skipped = seen[-1]
    assert skipped.data["count"] > 0 and skipped.id is None
    assert skipped.data["last_event_id"] == seen[-2].id
    rest = [await stalled.next() for _ in range(5)]
    assert [f.data["deployment"]["version"] for f in rest] == [f"v{i}" for i in range(295, 300)]
    assert rest[-1].data["deployment"]["meta_data"] == padding
