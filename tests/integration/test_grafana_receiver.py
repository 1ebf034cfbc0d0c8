"""Grafana forwarder over real HTTP against the strict mock Grafana receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from forwarders.base import Delivered, Event, PermanentFailure, RetryLater, SendContext
from forwarders.grafana import GrafanaConfig, GrafanaForwarder
from relay.delivery.http import AiohttpTransport
from relay.standins.base import Fault
from relay.standins.grafana import GrafanaReceiver
from tests.forwarder_support import NOW, deployment_event, post_raw, send_context, serving

TOKEN = "glsa_integration_token"
STARTED_MS = 1714564800000
FINISHED_MS = 1714564925500
CONFIG = {"name": "grafana", "type": "grafana", "token": TOKEN, "tags": ["deploy"]}


@pytest.fixture
async def receiver() -> AsyncIterator[GrafanaReceiver]:
    """A Grafana receiver on a free loopback port."""
    async with serving(GrafanaReceiver(token=TOKEN, forbidden={"viewer-token"})) as server:
        yield server


def forwarder(receiver: GrafanaReceiver, **overrides: Any) -> GrafanaForwarder:
    """A Grafana forwarder pointed at `receiver`."""
    values = {**CONFIG, "url": receiver.url, **overrides}
    return GrafanaForwarder(GrafanaConfig.model_validate(values))


def event(event_type: str, **data: Any) -> Event:
    """A deployment event of web 1.2.3 to production, from 12:00 to 12:02:05.5."""
    times = {"started_at": "2024-05-01T12:00:00.000Z", "finished_at": "2024-05-01T12:02:05.500Z"}
    return deployment_event(event_type, **{**times, **data})


def context(transport: AiohttpTransport, shared: dict[str, Any] | None = None) -> SendContext:
    """A send context over the real transport."""
    return send_context(transport, now=NOW, shared=shared)


async def test_started_then_completed_makes_one_region(
    receiver: GrafanaReceiver, transport: AiohttpTransport
) -> None:
    """started creates the annotation; completed patches its end, tags and text."""
    target = forwarder(receiver)
    shared: dict[str, Any] = {}
    started = event("deployment.started", finished_at=None, result=None, status="building")
    assert isinstance(await target.send(started, context(transport, shared)), Delivered)
    completed = event("deployment.completed")
    assert isinstance(await target.send(completed, context(transport, shared)), Delivered)

    assert list(receiver.annotations) == [shared["annotation_id"]]
    (annotation,) = receiver.annotations.values()
    assert annotation["time"] == STARTED_MS
    assert annotation["timeEnd"] == FINISHED_MS
    assert "result:success" in annotation["tags"]
    assert annotation["text"].startswith("Deploy web 1.2.3 to production: success")
    assert [r.method for r in receiver.accepted] == ["POST", "PATCH"]
    assert receiver.rejected == []
    assert receiver.dashboard_ids == []


async def test_created_deployment_lands_on_the_dashboard_panel(
    receiver: GrafanaReceiver, transport: AiohttpTransport
) -> None:
    """A one-call deployment is a region on the configured dashboard panel and org."""
    target = forwarder(receiver, dashboard_uid="abc123", panel_id=4, org_id=3)
    outcome = await target.send(event("deployment.created"), context(transport))
    assert outcome == Delivered(200, "annotation 1 added")
    annotation = receiver.annotations[1]
    assert (annotation["dashboardUID"], annotation["panelId"]) == ("abc123", 4)
    assert annotation["orgId"] == "3"
    assert (annotation["time"], annotation["timeEnd"]) == (STARTED_MS, FINISHED_MS)
    assert "dashboardId" not in receiver.accepted[0].json()


async def test_build_is_a_build_tagged_annotation(
    receiver: GrafanaReceiver, transport: AiohttpTransport
) -> None:
    """build.created is accepted and tagged `build`."""
    build = event("build.created", kind="build", stage=None)
    assert isinstance(await forwarder(receiver).send(build, context(transport)), Delivered)
    assert "build" in receiver.annotations[1]["tags"]


@pytest.mark.parametrize(("token", "status"), [("wrong", 401), ("viewer-token", 403)])
async def test_bad_or_unprivileged_token_is_permanent(
    receiver: GrafanaReceiver, transport: AiohttpTransport, token: str, status: int
) -> None:
    """A rejected token fails permanently and creates nothing."""
    with pytest.raises(PermanentFailure) as caught:
        await forwarder(receiver, token=token).send(event("deployment.created"), context(transport))
    assert caught.value.status_code == status
    assert receiver.annotations == {}


async def test_server_error_retries_then_succeeds(
    receiver: GrafanaReceiver, transport: AiohttpTransport
) -> None:
    """A 503 asks for a retry; the retry creates exactly one annotation."""
    receiver.faults.append(Fault(503, {"message": "unavailable"}, {"Retry-After": "60"}))
    target = forwarder(receiver)
    with pytest.raises(RetryLater) as caught:
        await target.send(event("deployment.created"), context(transport))
    assert caught.value.at is not None
    assert isinstance(await target.send(event("deployment.created"), context(transport)), Delivered)
    assert len(receiver.annotations) == 1


async def test_patch_of_unknown_annotation_is_permanent(
    receiver: GrafanaReceiver, transport: AiohttpTransport
) -> None:
    """A stale remembered id gets the real 404 and fails permanently."""
    with pytest.raises(PermanentFailure) as caught:
        await forwarder(receiver).send(
            event("deployment.completed"), context(transport, {"annotation_id": 404})
        )
    assert caught.value.status_code == 404
    assert receiver.annotations == {}


async def post(url: str, body: Any, token: str | None = TOKEN, method: str = "POST") -> int:
    """Send `body` (JSON, or raw bytes) directly and return the status."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, _ = await post_raw(url, body, headers=headers, method=method)
    return status


VALID = {"text": "deployed", "time": STARTED_MS}


@pytest.mark.parametrize(
    "body",
    [
        {"time": STARTED_MS},
        {"text": "", "time": STARTED_MS},
        {"text": 5, "time": STARTED_MS},
        {"text": "deployed"},
        {"text": "deployed", "time": 0, "timeEnd": 0},
        {"text": "deployed", "time": 1714564800000.5},
        {"text": "deployed", "time": 1.7145648e12},
        {"text": "deployed", "time": "1714564800000"},
        {"text": "deployed", "time": True},
        {**VALID, "timeEnd": "later"},
        {**VALID, "tags": "deploy"},
        {**VALID, "tags": ["ok", 3]},
        {**VALID, "panelId": "4"},
        {**VALID, "dashboardUID": 12},
        {**VALID, "data": ["x"]},
        ["not", "an", "object"],
        b"{not json",
    ],
)
async def test_receiver_rejects_invalid_annotations(receiver: GrafanaReceiver, body: Any) -> None:
    """Missing/empty text, non-integer or absent times and mistyped fields get a 400."""
    assert await post(f"{receiver.url}/api/annotations", body) == 400
    assert receiver.annotations == {}


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("nope", 401), ("viewer-token", 403)])
async def test_receiver_checks_the_token(
    receiver: GrafanaReceiver, token: str | None, status: int
) -> None:
    """No or wrong Bearer token → 401; a token without permission → 403."""
    assert await post(f"{receiver.url}/api/annotations", VALID, token=token) == status


async def test_receiver_accepts_and_records_deprecated_dashboard_id(
    receiver: GrafanaReceiver,
) -> None:
    """A valid body (even with dashboardId) is added; the dashboardId is recorded."""
    assert await post(f"{receiver.url}/api/annotations", {**VALID, "dashboardId": 9}) == 200
    assert receiver.dashboard_ids == [9]
    assert receiver.annotations[1]["timeEnd"] == STARTED_MS


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/annotations/99", {"timeEnd": FINISHED_MS}, 404),
        ("/api/annotations/abc", {"timeEnd": FINISHED_MS}, 400),
        ("/api/annotations/1", {"timeEnd": 1.5}, 400),
        ("/api/annotations/1", {"tags": [1]}, 400),
        ("/api/annotations/1", {"timeEnd": FINISHED_MS}, 200),
    ],
)
async def test_receiver_patch_validation(
    receiver: GrafanaReceiver, path: str, body: Any, status: int
) -> None:
    """PATCH needs a known integer id and well-typed fields."""
    assert await post(f"{receiver.url}/api/annotations", VALID) == 200
    assert await post(f"{receiver.url}{path}", body, method="PATCH") == status
    expected_end = FINISHED_MS if status == 200 else STARTED_MS
    assert receiver.annotations[1]["timeEnd"] == expected_end
