"""The deliveries API on a whole relay (create_app on a SQLite file) delivering over real
HTTP to local Standard Webhooks receivers: inspect, search, retry, replay, forwarder
health, re-enabling after a 410 — and never a forwarder secret in an answer."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from relay.app import create_app
from relay.standins.base import Fault
from relay.standins.webhook import WebhookReceiver
from relay.timeutil import utcnow
from tests.acceptance.api import WIRE_TIME, assert_error, bearer, create, post_json
from tests.delivery_support import SECRET, engine_settings, eventually, free_port, webhook
from tests.support import ADMIN_TOKEN, CI_TOKEN, READ_TOKEN, WEB_TOKEN, WRITE_TOKEN

Client = TestClient[Any, Any]
StartRelay = Callable[..., Awaitable[Client]]
StartReceiver = Callable[..., Awaitable[WebhookReceiver]]


@pytest.fixture
async def receiver() -> AsyncIterator[StartReceiver]:
    """Start Standard Webhooks receivers with canned faults; all stop afterwards."""
    started: list[WebhookReceiver] = []

    async def start(*faults: Fault, path: str = "/hook", secret: str = SECRET) -> WebhookReceiver:
        recv = WebhookReceiver(secret, path=path)
        recv.faults.extend(faults)
        await recv.start()
        started.append(recv)
        return recv

    yield start
    for recv in started:
        await recv.stop()


@pytest.fixture
def relay(aiohttp_client: AiohttpClient, tmp_path: Path) -> StartRelay:
    """Start a relay on a SQLite file with the test tokens and the given forwarders."""

    async def start(
        forwarders: list[dict[str, Any]], delivery: dict[str, Any] | None = None
    ) -> Client:
        settings = engine_settings(tmp_path / "relay.db", forwarders, delivery=delivery)
        return await aiohttp_client(create_app(settings))

    return start


async def get(client: Client, path: str, token: str = CI_TOKEN) -> Any:
    """GET `path` as `token`, asserting 200; the JSON body."""
    response = await client.get(path, headers=bearer(token))
    assert response.status == 200, await response.text()
    return await response.json()


async def deliveries_of(client: Client, deployment_id: str) -> list[dict[str, Any]]:
    """GET …/deployments/{id}/deliveries."""
    found: list[dict[str, Any]] = await get(
        client, f"/components/api/deployments/{deployment_id}/deliveries"
    )
    return found


async def settled(
    client: Client, deployment_id: str, forwarder: str, status: str
) -> dict[str, Any]:
    """Wait until the deployment's delivery to `forwarder` has `status`."""

    async def check() -> dict[str, Any] | None:
        for d in await deliveries_of(client, deployment_id):
            if d["forwarder"] == forwarder and d["status"] == status:
                return d
        return None

    return await eventually(check, what=f"{forwarder} {status}")


async def test_deployment_deliveries_show_every_attempt(
    relay: StartRelay, receiver: StartReceiver
) -> None:
    """Per forwarder: status and attempts with time, duration, status code and error."""
    recv = await receiver(Fault(503, {"error": "busy"}))
    other = await receiver()
    client = await relay([webhook("hook", recv.endpoint), webhook("other", other.endpoint)])
    dep = await create(client, "api", {"version": "1.0.0", "stage": "production"})
    await settled(client, dep, "hook", "delivered")
    await settled(client, dep, "other", "delivered")
    hook, other_delivery = await deliveries_of(client, dep)
    assert (hook["forwarder"], other_delivery["forwarder"]) == ("hook", "other")
    assert hook["deployment_id"] == dep and hook["component"] == "api"
    assert hook["event_type"] == "deployment.created"
    assert hook["attempts"] == 2 and WIRE_TIME.match(hook["delivered_at"])
    first, second = hook["attempt_log"]
    assert first["number"] == 1 and WIRE_TIME.match(first["started_at"])
    assert first["status_code"] == 503 and first["outcome"] == "retry"
    assert first["error"] == "webhook answered HTTP 503: busy"
    assert json.loads(first["response_excerpt"]) == {"error": "busy"}
    assert isinstance(first["duration_ms"], float | int) and first["duration_ms"] >= 0
    assert (second["number"], second["status_code"], second["outcome"]) == (2, 200, "delivered")
    assert second["error"] is None
    # The deployment itself summarises them.
    record = await get(client, f"/components/api/deployments/{dep}")
    assert {(d["forwarder"], d["status"], d["attempts"]) for d in record["deliveries"]} == {
        ("hook", "delivered", 2),
        ("other", "delivered", 1),
    }


async def test_deployment_deliveries_need_a_reader_of_that_component(
    relay: StartRelay, receiver: StartReceiver
) -> None:
    """401 without a token, 403 for a token of other components, 404 for an unknown id."""
    recv = await receiver()
    client = await relay([webhook("hook", recv.endpoint)])
    dep = await create(client, "api", {"version": "1.0.0"})
    path = f"/components/api/deployments/{dep}/deliveries"
    await assert_error(await client.get(path), 401)
    await assert_error(await client.get(path, headers=bearer(WEB_TOKEN)), 403)
    await assert_error(await client.get(path, headers=bearer(WRITE_TOKEN)), 403)
    unknown = "/components/api/deployments/00000000-0000-0000-0000-000000000000/deliveries"
    await assert_error(await client.get(unknown, headers=bearer()), 404)


async def test_search_dead_deliveries_of_one_forwarder(
    relay: StartRelay, receiver: StartReceiver
) -> None:
    """GET /deliveries?status=dead&forwarder=… finds exactly those, newest first."""
    strict = await receiver(*[Fault(400, {"error": "no"})] * 2)
    fine = await receiver()
    client = await relay([webhook("strict", strict.endpoint), webhook("fine", fine.endpoint)])
    deps = []
    for i, status in enumerate(["dead", "dead", "delivered"]):
        deps.append(await create(client, "api", {"version": f"1.0.{i}"}))
        await settled(client, deps[-1], "strict", status)
        await settled(client, deps[-1], "fine", "delivered")

    dead = await get(client, "/deliveries?status=dead&forwarder=strict")
    assert [d["deployment_id"] for d in dead] == [deps[1], deps[0]]
    assert all(d["status"] == "dead" and d["last_status_code"] == 400 for d in dead)
    assert all(d["last_error"] == "webhook answered HTTP 400: no" for d in dead)
    assert await get(client, "/deliveries?status=dead&forwarder=fine") == []
    assert len(await get(client, "/deliveries?forwarder=fine&status=delivered")) == 3
    assert len(await get(client, "/deliveries?forwarder=strict&limit=1")) == 1
    assert len(await get(client, "/deliveries", READ_TOKEN)) == 6
    # A token sees only the deliveries of components it may read.
    assert await get(client, "/deliveries?status=dead", WEB_TOKEN) == []
    await assert_error(await client.get("/deliveries?status=bogus", headers=bearer()), 422)
    await assert_error(await client.get("/deliveries?limit=0", headers=bearer()), 422)
    await assert_error(await client.get("/deliveries", headers=bearer(WRITE_TOKEN)), 403)
    await assert_error(await client.get("/deliveries"), 401)


async def test_retrying_a_dead_delivery_delivers_it(
    relay: StartRelay, receiver: StartReceiver
) -> None:
    """POST /deliveries/{id}/retry sends a dead delivery again (admin only)."""
    recv = await receiver(Fault(422, {"error": "project archived"}))
    client = await relay([webhook("hook", recv.endpoint)])
    dep = await create(client, "api", {"version": "1.0.0"})
    dead = await settled(client, dep, "hook", "dead")
    path = f"/deliveries/{dead['id']}/retry"

    await assert_error(await client.post(path), 401)
    await assert_error(await client.post(path, headers=bearer(CI_TOKEN)), 403)
    await assert_error(await client.post(path, headers=bearer(READ_TOKEN)), 403)
    await assert_error(
        await client.post("/deliveries/nope/retry", headers=bearer(ADMIN_TOKEN)), 404
    )
    assert recv.events == []

    response = await client.post(path, headers=bearer(ADMIN_TOKEN))
    assert response.status == 202, await response.text()
    answer = await response.json()
    assert answer["id"] == dead["id"] and answer["status"] == "pending"
    done = await settled(client, dep, "hook", "delivered")
    assert [a["outcome"] for a in done["attempt_log"]] == ["dead", "delivered"]
    (event,) = recv.events
    assert event.msg_id == dead["id"]  # same idempotency key as the first try


async def test_replay_redelivers_the_events_of_a_window(
    relay: StartRelay, receiver: StartReceiver
) -> None:
    """POST /forwarders/{name}/replay queues the matching events of [since, until)."""
    recv = await receiver()
    prod = await receiver()
    client = await relay(
        [
            webhook("hook", recv.endpoint),
            webhook("prod", prod.endpoint, match={"stages": ["production"]}),
        ]
    )
    before = await create(client, "api", {"version": "0", "stage": "production"})
    since = utcnow()
    inside = [
        await create(client, "api", {"version": "1", "stage": "production"}),
        await create(client, "api", {"version": "2", "stage": "staging"}),
    ]
    until = utcnow()
    await create(client, "api", {"version": "3", "stage": "production"})
    await eventually(lambda: len(recv.events) == 4 and len(prod.events) == 3)
    window = {"since": since.isoformat(), "until": until.isoformat()}

    response = await post_json(client, "/forwarders/hook/replay", window, ADMIN_TOKEN)
    assert response.status == 202, await response.text()
    assert await response.json() == {"forwarder": "hook", "queued": 2}
    # Only events the forwarder's match accepts are replayed to it.
    response = await post_json(client, "/forwarders/prod/replay", window, ADMIN_TOKEN)
    assert await response.json() == {"forwarder": "prod", "queued": 1}

    await eventually(lambda: len(recv.events) == 6 and len(prod.events) == 4)
    replayed = [e.payload["data"]["version"] for e in recv.events[4:]]
    assert sorted(replayed) == ["1", "2"]
    assert prod.events[3].payload["data"]["version"] == "1"
    assert {e.msg_id for e in recv.events[4:]}.isdisjoint(e.msg_id for e in recv.events[:4])
    for dep in inside:
        assert [d["forwarder"] for d in await deliveries_of(client, dep)].count("hook") == 2
    assert len(await deliveries_of(client, before)) == 2


@pytest.mark.parametrize(
    ("name", "body", "token", "status"),
    [
        (
            "nobody",
            {"since": "2024-01-01T00:00:00Z", "until": "2024-01-02T00:00:00Z"},
            ADMIN_TOKEN,
            404,
        ),
        (
            "hook",
            {"since": "2024-01-02T00:00:00Z", "until": "2024-01-01T00:00:00Z"},
            ADMIN_TOKEN,
            422,
        ),
        (
            "hook",
            {"since": "2024-01-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"},
            ADMIN_TOKEN,
            422,
        ),
        ("hook", {"since": "2024-01-01T00:00:00Z"}, ADMIN_TOKEN, 422),
        ("hook", {"since": "yesterday", "until": "2024-01-01T00:00:00Z"}, ADMIN_TOKEN, 422),
        ("hook", {"since": "2024-01-01T00:00:00Z", "until": "2024-01-02T00:00:00Z"}, CI_TOKEN, 403),
    ],
)
async def test_replay_refuses_bad_requests(
    relay: StartRelay,
    receiver: StartReceiver,
    name: str,
    body: dict[str, Any],
    token: str,
    status: int,
) -> None:
    """404 unknown forwarder, 422 for a missing, unreadable or empty window, 403 non-admin."""
    recv = await receiver()
    client = await relay([webhook("hook", recv.endpoint)])
    await assert_error(await post_json(client, f"/forwarders/{name}/replay", body, token), status)


async def test_replay_of_a_malformed_body_is_400(
    relay: StartRelay, receiver: StartReceiver
) -> None:
    """A body that is not a JSON object is a 400, not a 500."""
    recv = await receiver()
    client = await relay([webhook("hook", recv.endpoint)])
    response = await client.post(
        "/forwarders/hook/replay",
        data=b"{not json",
        headers={"Content-Type": "application/json", **bearer(ADMIN_TOKEN)},
    )
    await assert_error(response, 400)


async def test_forwarders_show_state_success_rate_and_last_error(
    relay: StartRelay, receiver: StartReceiver
) -> None:
    """GET /forwarders: each forwarder's state, 24 h success rate and last error."""
    good = await receiver()
    flaky = await receiver(Fault(500, {"error": "oops"}))
    bad = await receiver(*[Fault(400, {"error": "no"})] * 3)
    client = await relay(
        [
            webhook("good", good.endpoint),
            webhook("flaky", flaky.endpoint),
            webhook("bad", bad.endpoint),
            webhook("down", f"http://127.0.0.1:{free_port()}/hook", retry={"schedule": ["1h"]}),
            webhook("off", good.endpoint, enabled=False),
        ]
    )
    dep = await create(client, "api", {"version": "1.0.0"})
    await settled(client, dep, "good", "delivered")
    await settled(client, dep, "flaky", "delivered")
    await settled(client, dep, "bad", "dead")

    async def down_failed() -> Any:
        found = {f["name"]: f for f in await get(client, "/forwarders", READ_TOKEN)}
        return found if found["down"]["counts"]["last_error"] else None

    found = await eventually(down_failed)
    assert list(found) == ["good", "flaky", "bad", "down", "off"]
    assert {n: f["type"] for n, f in found.items()} == dict.fromkeys(found, "webhook")
    assert {n: f["state"] for n, f in found.items()} == {
        "good": "active",
        "flaky": "active",
        "bad": "active",
        "down": "active",
        "off": "disabled",
    }
    assert found["good"]["success_rate_24h"] == 1.0
    assert found["flaky"]["success_rate_24h"] == 0.5
    assert found["bad"]["success_rate_24h"] == 0.0
    assert found["down"]["success_rate_24h"] == 0.0
    assert found["off"]["success_rate_24h"] is None
    assert (
        found["good"]["counts"]["delivered"] == 1 and found["good"]["counts"]["last_error"] is None
    )
    assert found["bad"]["counts"]["dead"] == 1
    assert found["bad"]["counts"]["last_error"] == "webhook answered HTTP 400: no"
    assert WIRE_TIME.match(found["bad"]["counts"]["last_error_at"])
    assert found["down"]["counts"]["pending"] == 1
    assert found["down"]["counts"]["last_error"].startswith("could not reach webhook")
    assert WIRE_TIME.match(found["down"]["counts"]["oldest_pending_at"])
    await assert_error(await client.get("/forwarders"), 401)
    await assert_error(await client.get("/forwarders", headers=bearer(WRITE_TOKEN)), 403)


async def test_a_token_limited_to_components_sees_no_forwarder_last_error(
    relay: StartRelay, receiver: StartReceiver
) -> None:
    """A token limited to some components gets the forwarders' counts but not their last
    error, which quotes a delivery of any component (a target naming another's release)."""
    bad = await receiver(Fault(400, {"error": "release api@3.0 exists"}))
    client = await relay([webhook("bad", bad.endpoint)])
    dep = await create(client, "api", {"version": "3.0"})
    await settled(client, dep, "bad", "dead")
    (wide,) = await get(client, "/forwarders", READ_TOKEN)
    assert "api@3.0" in wide["counts"]["last_error"]
    (limited,) = await get(client, "/forwarders", WEB_TOKEN)
    assert limited["counts"]["dead"] == 1
    assert (limited["counts"]["last_error"], limited["counts"]["last_error_at"]) == (None, None)


async def test_410_disables_a_forwarder_until_enabled(
    relay: StartRelay, receiver: StartReceiver
) -> None:
    """After a 410 the forwarder shows as disabled and holds its deliveries; POST
    /forwarders/{name}/enable (admin) resumes them."""
    recv = await receiver(Fault(410, {"error": "hook deleted"}))
    client = await relay([webhook("hook", recv.endpoint)])
    gone = await create(client, "api", {"version": "1"})
    dead = await settled(client, gone, "hook", "dead")
    assert dead["last_status_code"] == 410
    (info,) = await get(client, "/forwarders")
    assert info["state"] == "disabled" and "410" in info["disabled_reason"]

    held = [await create(client, "api", {"version": str(v)}) for v in (2, 3)]
    await asyncio.sleep(0.3)
    for dep in held:
        (d,) = await deliveries_of(client, dep)
        assert (d["status"], d["attempts"]) == ("pending", 0)

    await assert_error(await client.post("/forwarders/hook/enable", headers=bearer()), 403)
    await assert_error(
        await client.post("/forwarders/nobody/enable", headers=bearer(ADMIN_TOKEN)), 404
    )
    response = await client.post("/forwarders/hook/enable", headers=bearer(ADMIN_TOKEN))
    assert response.status == 200, await response.text()
    assert await response.json() == {"forwarder": "hook", "state": "active"}
    for dep in held:
        await settled(client, dep, "hook", "delivered")
    assert [e.payload["data"]["version"] for e in recv.events] == ["2", "3"]
    (info,) = await get(client, "/forwarders")
    assert info["state"] == "active" and info["disabled_reason"] is None


async def test_no_forwarder_secret_appears_in_any_answer(
    relay: StartRelay, receiver: StartReceiver
) -> None:
    """Signing secrets, credential headers and secret URLs never show in the API."""
    path_token = "T0SECRET/B0SECRET/xoxb-path-credential-123"
    recv = await receiver(
        Fault(500, {"error": "oops"}), Fault(400, {"error": "no"}), path=f"/hooks/{path_token}"
    )
    previous = "whsec_" + base64.b64encode(b"previous-secret-still-valid!").decode()
    header_secret = "Bearer hdr-credential-0123456789"
    down_url = f"http://127.0.0.1:{free_port()}/services/{path_token}"
    forwarders = [
        webhook(
            "hook",
            recv.endpoint,
            previous_secrets=[previous],
            headers={"Authorization": header_secret, "X-Team": "platform"},
        ),
        webhook("down", down_url, retry={"schedule": ["1h"]}),
    ]
    client = await relay(forwarders)
    first = await create(client, "api", {"version": "1"})
    await eventually(lambda: recv.received)  # the 500 goes to the first deployment
    second = await create(client, "api", {"version": "2"})
    dead = await settled(client, second, "hook", "dead")
    await settled(client, first, "hook", "delivered")
    await eventually(lambda: _down_failed(client))

    answers = [
        await client.get("/forwarders", headers=bearer(ADMIN_TOKEN)),
        await client.get("/deliveries", headers=bearer(ADMIN_TOKEN)),
        await client.get("/deliveries?status=dead", headers=bearer(ADMIN_TOKEN)),
        await client.get(f"/components/api/deployments/{first}/deliveries", headers=bearer()),
        await client.get(f"/components/api/deployments/{second}", headers=bearer()),
        await client.post(f"/deliveries/{dead['id']}/retry", headers=bearer(ADMIN_TOKEN)),
        await post_json(
            client,
            "/forwarders/hook/replay",
            {"since": "2020-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"},
            ADMIN_TOKEN,
        ),
        await client.post("/forwarders/down/enable", headers=bearer(ADMIN_TOKEN)),
        await client.get("/metrics"),
        await client.get("/openapi.json", headers=bearer(ADMIN_TOKEN)),
    ]
    secrets = [
        SECRET,
        SECRET.removeprefix("whsec_"),
        previous,
        previous.removeprefix("whsec_"),
        header_secret,
        "hdr-credential-0123456789",
        recv.endpoint,
        down_url,
        path_token,
        "xoxb-path-credential",
    ]
    for response in answers:
        assert response.status < 300, (response.url, await response.text())
        text = await response.text()
        for secret in secrets:
            assert secret not in text, (response.url, secret)


async def _down_failed(client: Client) -> bool:
    found = {f["name"]: f for f in await get(client, "/forwarders", ADMIN_TOKEN)}
    return bool(found["down"]["counts"]["last_error"])


async def test_replay_to_a_forwarder_disabled_in_config_is_409(
    relay: StartRelay, receiver: StartReceiver
) -> None:
    """Replaying to an `enabled = false` forwarder is refused instead of queueing forever."""
    recv = await receiver()
    client = await relay([{**webhook("hook", recv.endpoint), "enabled": False}])
    window = {"since": "2024-01-01T00:00:00Z", "until": "2024-01-02T00:00:00Z"}
    await assert_error(await post_json(client, "/forwarders/hook/replay", window, ADMIN_TOKEN), 409)
