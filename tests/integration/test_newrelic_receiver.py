"""New Relic forwarder over real HTTP against the strict New Relic receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from forwarders.base import Delivered, Event, PermanentFailure, RetryLater, SendContext
from forwarders.newrelic import MUTATION, NewRelicConfig, NewRelicForwarder
from relay.delivery.http import AiohttpTransport
from relay.standins.base import Fault
from relay.standins.newrelic import NewRelicReceiver
from relay.timeutil import format_wire
from tests.forwarder_support import deployment_event, post_raw, send_context, serving

KEY = "NRAK-INTEGRATION"
GUID = "MTIzNDU2fEFQTXxBUFBMSUNBVElPTnwx"


@pytest.fixture
async def receiver() -> AsyncIterator[NewRelicReceiver]:
    """A New Relic receiver knowing one entity and application 1234."""
    server = NewRelicReceiver(api_key=KEY, entity_guids=[GUID], app_ids=[1234])
    async with serving(server):
        yield server


def forwarder(url: str, **overrides: Any) -> NewRelicForwarder:
    """A NerdGraph forwarder pointed at `url` (REST with api="rest", app_id=...)."""
    values = {"name": "nr", "type": "newrelic", "url": url, "api_key": KEY, "entity_guid": GUID}
    return NewRelicForwarder(NewRelicConfig.model_validate({**values, **overrides}))


def event(finished: datetime | None = None, **data: Any) -> Event:
    """A successful deployment that finished at `finished` (default: a minute ago)."""
    when = finished or datetime.now(UTC) - timedelta(minutes=1)
    fields = {
        "finished_at": format_wire(when),
        "commit_sha": "abc123",
        "meta_data": {"user_id": "alice", "deployment_type": "CANARY"},
    }
    return deployment_event("deployment.completed", at=datetime.now(UTC), **{**fields, **data})


def context(transport: AiohttpTransport) -> SendContext:
    """A send context over the real transport, now = the current time."""
    return send_context(transport)


async def test_nerdgraph_deployment_is_created(
    receiver: NewRelicReceiver, transport: AiohttpTransport
) -> None:
    """The mutation is accepted and the change deployment recorded."""
    outcome = await forwarder(receiver.url).send(event(), context(transport))
    assert isinstance(outcome, Delivered)
    [created] = receiver.change_deployments
    assert (created["entityGuid"], created["version"], created["deploymentType"]) == (
        GUID,
        "1.2.3",
        "CANARY",
    )
    assert outcome.excerpt == f"deploymentId {created['deploymentId']}"


async def test_replayed_old_event_is_accepted_without_timestamp(
    receiver: NewRelicReceiver, transport: AiohttpTransport
) -> None:
    """A 3-day-old event is still accepted: the time moves into the description."""
    old = datetime.now(UTC) - timedelta(days=3)
    await forwarder(receiver.url).send(event(finished=old), context(transport))
    [created] = receiver.change_deployments
    assert "timestamp" not in created
    assert format_wire(old) in created["description"]


async def test_unknown_entity_is_a_permanent_failure(
    receiver: NewRelicReceiver, transport: AiohttpTransport
) -> None:
    """An unknown entity GUID comes back as a 200 errors array, failed permanently."""
    with pytest.raises(PermanentFailure, match="not found"):
        await forwarder(receiver.url, entity_guid="OTHER").send(event(), context(transport))
    assert receiver.change_deployments == []


async def test_graphql_timeout_error_is_retried(
    receiver: NewRelicReceiver, transport: AiohttpTransport
) -> None:
    """A canned 200 answer with a TIMEOUT error class becomes RetryLater."""
    body = {"errors": [{"message": "timed out", "extensions": {"errorClass": "TIMEOUT"}}]}
    receiver.faults.append(Fault(200, body))
    with pytest.raises(RetryLater):
        await forwarder(receiver.url).send(event(), context(transport))


async def test_wrong_key_is_permanent(
    receiver: NewRelicReceiver, transport: AiohttpTransport
) -> None:
    """A bad API key gets 401, a permanent failure that does not echo the key."""
    with pytest.raises(PermanentFailure) as caught:
        await forwarder(receiver.url, api_key="NRAK-WRONG").send(event(), context(transport))
    assert caught.value.status_code == 401
    assert "NRAK-WRONG" not in str(caught.value)


async def test_rest_marker_is_created(
    receiver: NewRelicReceiver, transport: AiohttpTransport
) -> None:
    """The REST API records a marker with truncated user and a past timestamp."""
    rest = forwarder(receiver.url, api="rest", entity_guid=None, app_id=1234)
    long_user = event(meta_data={"user_id": "u" * 40})
    outcome = await rest.send(long_user, context(transport))
    assert isinstance(outcome, Delivered)
    assert outcome.status_code == 201
    [marker] = receiver.rest_deployments
    assert (marker["revision"], marker["user"]) == ("1.2.3", "u" * 31)


async def test_rest_future_timestamp_is_clamped_and_accepted(
    receiver: NewRelicReceiver, transport: AiohttpTransport
) -> None:
    """A finish time ahead of the clock is clamped, so the receiver accepts it."""
    rest = forwarder(receiver.url, api="rest", entity_guid=None, app_id=1234)
    future = datetime.now(UTC) + timedelta(minutes=5)
    assert isinstance(await rest.send(event(finished=future), context(transport)), Delivered)


async def test_rest_unknown_app_is_permanent(
    receiver: NewRelicReceiver, transport: AiohttpTransport
) -> None:
    """An unknown application id answers 404, a permanent failure."""
    rest = forwarder(receiver.url, api="rest", entity_guid=None, app_id=999)
    with pytest.raises(PermanentFailure, match="Application not found"):
        await rest.send(event(), context(transport))


def mutation_body(**deployment: Any) -> dict[str, Any]:
    """A NerdGraph request body with a valid deployment updated by `deployment`."""
    values: dict[str, Any] = {"entityGuid": GUID, "version": "1"}
    values.update(deployment)
    return {"query": MUTATION, "variables": {"deployment": values}}


@pytest.mark.parametrize(
    "body",
    [
        mutation_body(entityGuid=None),
        mutation_body(version=None),
        mutation_body(deploymentType="YOLO"),
        mutation_body(timestamp=int((datetime.now(UTC) - timedelta(hours=25)).timestamp() * 1000)),
        mutation_body(timestamp=int((datetime.now(UTC) + timedelta(hours=25)).timestamp() * 1000)),
        mutation_body(timestamp="yesterday"),
        mutation_body(colour="blue"),
        mutation_body(entityGuid="UNKNOWN"),
        {"query": "mutation { somethingElse }", "variables": {}},
        {"query": "query { actor { user { name } } }"},
    ],
)
async def test_nerdgraph_receiver_refuses_bad_input_in_errors_array(
    receiver: NewRelicReceiver, body: dict[str, Any]
) -> None:
    """Refused mutations answer HTTP 200 with an errors array, like NerdGraph."""
    status, answer = await post_raw(receiver.url + "/graphql", body, headers={"API-Key": KEY})
    assert status == 200
    assert answer["errors"]
    assert receiver.change_deployments == []


async def test_nerdgraph_receiver_requires_api_key(receiver: NewRelicReceiver) -> None:
    """No API-Key header answers 401."""
    status, _ = await post_raw(receiver.url + "/graphql", mutation_body())
    assert status == 401


REST_PATH = "/v2/applications/1234/deployments.json"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 400),
        ({"deployment": {}}, 422),
        ({"deployment": {"revision": "r" * 128}}, 422),
        ({"deployment": {"revision": "1", "user": "u" * 32}}, 422),
        ({"deployment": {"revision": "1", "timestamp": "not a time"}}, 422),
        ({"deployment": {"revision": "1", "timestamp": "2999-01-01T00:00:00Z"}}, 422),
        ({"deployment": {"revision": "1", "timestamp": "2024-01-01T02:00:00+02:00"}}, 422),
        ({"deployment": {"revision": "1", "timestamp": "2024-01-01T00:00:00Z"}}, 201),
    ],
)
async def test_rest_receiver_validates_markers(
    receiver: NewRelicReceiver, body: dict[str, Any], status: int
) -> None:
    """Revision ≤127 required, user ≤31, timestamp ISO-8601 in UTC and not in the future."""
    answered, answer = await post_raw(receiver.url + REST_PATH, body, headers={"X-Api-Key": KEY})
    assert answered == status
    if status == 201:
        assert answer["deployment"]["revision"] == "1"
    else:
        assert answer["error"]["title"]


async def test_rest_receiver_checks_key_and_app(receiver: NewRelicReceiver) -> None:
    """A wrong key answers 401 and an unknown app id 404."""
    body = {"deployment": {"revision": "1"}}
    assert (await post_raw(receiver.url + REST_PATH, body))[0] == 401
    url = receiver.url + "/v2/applications/42/deployments.json"
    assert (await post_raw(url, body, headers={"Api-Key": KEY}))[0] == 404
