"""New Relic's limits, enforced by relay and by the stand-in alike, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from forwarders.base import Delivered, Event, RetryLater, SendContext
from forwarders.newrelic import MAX_REST_TEXT, NewRelicConfig, NewRelicForwarder
from relay.delivery.http import AiohttpTransport
from relay.standins.newrelic import NewRelicReceiver
from relay.timeutil import format_wire
from tests.forwarder_support import deployment_event, post_raw, send_context, serving

USER_KEY = "NRAK-INTEGRATION"
# A (classic) REST API key: New Relic takes it in X-Api-Key only.
REST_KEY = "0123456789abcdef0123456789abcdef01234567"
GUID = "MTIzNDU2fEFQTXxBUFBMSUNBVElPTnwx"
MARKERS = "/v2/applications/1234/deployments.json"


@pytest.fixture
async def receiver() -> AsyncIterator[NewRelicReceiver]:
    """A New Relic stand-in knowing one entity and application 1234, with a user key."""
    server = NewRelicReceiver(api_key=USER_KEY, entity_guids=[GUID], app_ids=[1234])
    async with serving(server):
        yield server


def forwarder(url: str, **overrides: Any) -> NewRelicForwarder:
    """A NerdGraph forwarder pointed at `url` (REST with api="rest", app_id=...)."""
    values = {"name": "nr", "type": "newrelic", "url": url, "api_key": USER_KEY}
    values["entity_guid"] = GUID
    return NewRelicForwarder(NewRelicConfig.model_validate({**values, **overrides}))


def rest(url: str, **overrides: Any) -> NewRelicForwarder:
    """A REST marker forwarder for application 1234 pointed at `url`."""
    return forwarder(url, api="rest", app_id=1234, **overrides)


def event(finished: datetime | None = None, **meta: Any) -> Event:
    """A successful deployment that finished at `finished` (default: a minute ago)."""
    when = finished or datetime.now(UTC) - timedelta(minutes=1)
    data = {"finished_at": format_wire(when), "meta_data": {"user_id": "alice", **meta}}
    return deployment_event("deployment.completed", at=datetime.now(UTC), **data)


def context(transport: AiohttpTransport) -> SendContext:
    """A send context over the real transport, now = the current time."""
    return send_context(transport)


async def test_nerdgraph_rate_limit_is_retried(
    receiver: NewRelicReceiver, transport: AiohttpTransport
) -> None:
    """HTTP 200 with errorClass TOO_MANY_REQUESTS is transient: retried, then recorded."""
    receiver.limit_rate(1)
    target = forwarder(receiver.url)
    with pytest.raises(RetryLater, match="Too many requests"):
        await target.send(event(), context(transport))
    assert receiver.change_deployments == []
    assert isinstance(await target.send(event(), context(transport)), Delivered)
    assert len(receiver.change_deployments) == 1


async def test_rest_marker_with_a_rest_api_key(transport: AiohttpTransport) -> None:
    """A REST API key (not a user key) is accepted, because relay sends it as X-Api-Key."""
    server = NewRelicReceiver(api_key=REST_KEY, app_ids=[1234])
    async with serving(server):
        outcome = await rest(server.url, api_key=REST_KEY).send(event(), context(transport))
    assert isinstance(outcome, Delivered)
    assert server.accepted[0].headers["X-Api-Key"] == REST_KEY
    assert len(server.rest_deployments) == 1


async def test_rest_marker_text_beyond_the_bmp_and_too_long(
    receiver: NewRelicReceiver, transport: AiohttpTransport
) -> None:
    """Emoji are stripped and a changelog over 65,535 characters is cut: the marker is kept."""
    changelog = "🚀 shipped " + "x" * (MAX_REST_TEXT + 10)
    target = rest(receiver.url)
    outcome = await target.send(event(changelog=changelog, user_id="ci 🤖"), context(transport))
    assert isinstance(outcome, Delivered)
    [marker] = receiver.rest_deployments
    assert marker["changelog"].startswith(" shipped xxx")
    assert len(marker["changelog"].encode()) == MAX_REST_TEXT
    assert marker["user"] == "ci "


async def test_rest_marker_older_than_the_latest_is_recorded_now(
    receiver: NewRelicReceiver, transport: AiohttpTransport
) -> None:
    """New Relic refuses a marker older than the application's latest: relay sends it
    again without the timestamp, the deployment's time in the description."""
    target = rest(receiver.url)
    assert isinstance(await target.send(event(), context(transport)), Delivered)
    earlier = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    outcome = await target.send(event(finished=earlier), context(transport))
    assert isinstance(outcome, Delivered)
    first, second = receiver.rest_deployments
    assert second["timestamp"] >= first["timestamp"]
    assert second["description"].endswith(f"; deployed at {format_wire(earlier)}")
    assert [r.status for r in receiver.received] == [201, 422, 201]
    assert "timestamp" in receiver.received[1].json()["deployment"]
    assert "timestamp" not in receiver.received[2].json()["deployment"]


async def test_stand_in_refuses_what_the_rest_api_refuses(receiver: NewRelicReceiver) -> None:
    """Api-Key with a REST API key, emoji, a 65,536-character description: refused."""
    base = {"deployment": {"revision": "1.0"}}
    async with serving(NewRelicReceiver(api_key=REST_KEY, app_ids=[1234])) as classic:
        status, body = await post_raw(classic.url + MARKERS, base, headers={"Api-Key": REST_KEY})
        assert status == 401 and "invalid" in body["error"]["title"]
        status, _ = await post_raw(classic.url + MARKERS, base, headers={"X-Api-Key": REST_KEY})
        assert status == 201
    for field, value in (("description", "ok 🎉"), ("changelog", "x" * (MAX_REST_TEXT + 1))):
        marker = {"deployment": {"revision": "1.0", field: value}}
        status, body = await post_raw(
            receiver.url + MARKERS, marker, headers={"X-Api-Key": USER_KEY}
        )
        assert status == 422 and field.title() in body["error"]["title"]


async def test_stand_in_answers_a_rate_limit_as_nerdgraph_does(
    receiver: NewRelicReceiver,
) -> None:
    """limit_rate(): HTTP 200, no data, one error of class TOO_MANY_REQUESTS."""
    receiver.limit_rate(1)
    payload = {"query": "mutation { x }", "variables": {}}
    status, body = await post_raw(receiver.url + "/graphql", payload, headers={"API-Key": USER_KEY})
    assert status == 200 and body["data"] is None
    assert body["errors"][0]["extensions"]["errorClass"] == "TOO_MANY_REQUESTS"
