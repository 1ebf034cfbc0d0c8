"""Sentry forwarder over real HTTP against the strict Sentry receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from forwarders.base import Delivered, Event, PermanentFailure, RetryLater, SendContext
from forwarders.sentry import SentryConfig, SentryForwarder
from relay.http import AiohttpTransport
from relay.receivers.base import Fault
from relay.receivers.sentry import SentryReceiver

TOKEN = "sntrys_test_token"


@pytest.fixture
async def receiver() -> AsyncIterator[SentryReceiver]:
    """A Sentry receiver for org `acme` with projects web and api."""
    server = SentryReceiver(token=TOKEN, org="acme", projects=["web", "api"])
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    """The real HTTP transport."""
    real = AiohttpTransport()
    yield real
    await real.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A raw client for posting bad requests directly."""
    async with aiohttp.ClientSession() as client:
        yield client


def forwarder(url: str, **overrides: Any) -> SentryForwarder:
    """A Sentry forwarder pointed at `url`."""
    values: dict[str, Any] = {
        "name": "sentry",
        "type": "sentry",
        "url": url,
        "token": TOKEN,
        "org": "acme",
        "projects": ["web", "api"],
        "repository": "acme/web",
    }
    values.update(overrides)
    return SentryForwarder(SentryConfig.model_validate(values))


def event(event_type: str = "deployment.completed", **data: Any) -> Event:
    """A successful production deployment of web 1.2.3+7."""
    deployment: dict[str, Any] = {
        "id": "dep-1",
        "kind": "deployment",
        "component": "web",
        "version": "1.2.3+7",
        "status": "success",
        "stage": "production",
        "code_name": "Blue Falcon",
        "started_at": "2024-05-01T11:50:00.000Z",
        "finished_at": "2024-05-01T11:55:00.000Z",
        "commit_sha": "abc123",
        "meta_data": {},
    }
    deployment.update(data)
    return Event("evt-1", event_type, datetime.now(UTC), deployment)


def context(transport: AiohttpTransport, state: dict[str, Any] | None = None) -> SendContext:
    """A send context over the real transport."""
    return SendContext("del-1", 1, transport, 5.0, state=state if state is not None else {})


async def test_release_and_deploy_are_created(
    receiver: SentryReceiver, transport: AiohttpTransport
) -> None:
    """The receiver accepts both requests and records one release and one deploy."""
    outcome = await forwarder(receiver.url).send(event(), context(transport))
    assert isinstance(outcome, Delivered)
    release = receiver.releases["web@1.2.3+7"]
    assert release["refs"] == [{"repository": "acme/web", "commit": "abc123"}]
    assert release["dateReleased"] == "2024-05-01T11:55:00.000Z"
    assert len(receiver.deploys) == 1
    deploy = receiver.deploys[0]
    assert (deploy["version"], deploy["environment"], deploy["name"]) == (
        "web@1.2.3+7",
        "production",
        "Blue Falcon",
    )
    assert receiver.rejected == []


async def test_deploy_failure_then_retry_deploys_exactly_once(
    receiver: SentryReceiver, transport: AiohttpTransport
) -> None:
    """A 503 on the deploy is retried without re-creating the release; one deploy results."""
    sentry = forwarder(receiver.url)
    state: dict[str, Any] = {}
    await sentry.send(event("build.created", kind="build", stage=None), context(transport))
    # Faults answer the next requests in order: the release a canned 208 (it does
    # exist: the build made it), then the deploy a 503.
    receiver.faults += [Fault(208, {"version": "web@1.2.3+7"}), Fault(503, {"detail": "down"})]
    with pytest.raises(RetryLater):
        await sentry.send(event(), context(transport, state))
    assert state["release_done"] is True
    await sentry.send(event(), context(transport, state))
    await sentry.send(event(), context(transport, state))
    assert len(receiver.deploys) == 1
    assert [r.path.endswith("/deploys/") for r in receiver.received] == [False, False, True, True]


async def test_existing_release_answers_208(
    receiver: SentryReceiver, transport: AiohttpTransport
) -> None:
    """Creating a release twice answers 208 the second time, which is a success."""
    sentry = forwarder(receiver.url)
    build = event("build.created", kind="build", stage=None)
    await sentry.send(build, context(transport))
    outcome = await sentry.send(build, context(transport))
    assert outcome == Delivered(status_code=208, excerpt="release web@1.2.3+7")


async def test_wrong_token_and_unknown_org_are_permanent(
    receiver: SentryReceiver, transport: AiohttpTransport
) -> None:
    """401 for a bad token and 404 for another org are permanent failures."""
    with pytest.raises(PermanentFailure) as bad_token:
        await forwarder(receiver.url, token="wrong").send(event(), context(transport))
    with pytest.raises(PermanentFailure) as bad_org:
        await forwarder(receiver.url, org="other").send(event(), context(transport))
    assert (bad_token.value.status_code, bad_org.value.status_code) == (401, 404)
    assert receiver.releases == {}


async def test_unknown_project_is_rejected(
    receiver: SentryReceiver, transport: AiohttpTransport
) -> None:
    """A project the org does not have makes the release a permanent 400."""
    with pytest.raises(PermanentFailure) as caught:
        await forwarder(receiver.url, projects=["nope"]).send(event(), context(transport))
    assert caught.value.status_code == 400
    assert "projects" in caught.value.excerpt


async def test_rate_limited_release_is_retried_at_reset(
    receiver: SentryReceiver, transport: AiohttpTransport
) -> None:
    """A 429 with X-Sentry-Rate-Limit-Reset becomes RetryLater at that time."""
    receiver.faults.append(
        Fault(429, {"detail": "slow down"}, {"X-Sentry-Rate-Limit-Reset": "2000000000"})
    )
    with pytest.raises(RetryLater) as caught:
        await forwarder(receiver.url).send(event(), context(transport))
    assert caught.value.at == datetime.fromtimestamp(2_000_000_000, UTC)


RELEASES = "/api/0/organizations/acme/releases/"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"projects": ["web"]}, "version"),
        ({"version": "a/b", "projects": ["web"]}, "version"),
        ({"version": "latest", "projects": ["web"]}, "version"),
        ({"version": "x" * 201, "projects": ["web"]}, "version"),
        ({"version": "v1"}, "projects"),
        ({"version": "v1", "projects": []}, "projects"),
        ({"version": "v1", "projects": ["ghost"]}, "projects"),
        ({"version": "v1", "projects": ["web"], "refs": [{"commit": "abc"}]}, "refs"),
        ({"version": "v1", "projects": ["web"], "refs": [{"repository": "r"}]}, "refs"),
        ({"version": "v1", "projects": ["web"], "dateReleased": "yesterday"}, "dateReleased"),
    ],
)
async def test_receiver_rejects_invalid_release_bodies(
    receiver: SentryReceiver, session: aiohttp.ClientSession, body: dict[str, Any], field: str
) -> None:
    """Bad release bodies get 400 with a DRF-style error on the field."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with session.post(receiver.url + RELEASES, json=body, headers=headers) as resp:
        assert resp.status == 400
        assert field in await resp.json()
    assert receiver.releases == {}


async def test_receiver_requires_bearer_token(
    receiver: SentryReceiver, session: aiohttp.ClientSession
) -> None:
    """No or a wrong token answers 401."""
    body = {"version": "v1", "projects": ["web"]}
    async with session.post(receiver.url + RELEASES, json=body) as resp:
        assert resp.status == 401
    headers = {"Authorization": "Bearer nope"}
    async with session.post(receiver.url + RELEASES, json=body, headers=headers) as resp:
        assert resp.status == 401


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 400),
        ({"environment": ""}, 400),
        ({"environment": "e" * 65}, 400),
        ({"environment": "prod", "name": "n" * 65}, 400),
        ({"environment": "prod", "projects": ["api"]}, 400),
        ({"environment": "prod", "dateStarted": "soon"}, 400),
        ({"environment": "prod"}, 201),
    ],
)
async def test_receiver_validates_deploys(
    receiver: SentryReceiver, session: aiohttp.ClientSession, body: dict[str, Any], status: int
) -> None:
    """Deploys need an environment ≤64, a name ≤64 and projects of the release."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    release = {"version": "web@1", "projects": ["web"]}
    async with session.post(receiver.url + RELEASES, json=release, headers=headers) as resp:
        assert resp.status == 201
    url = receiver.url + RELEASES + "web%401/deploys/"
    async with session.post(url, json=body, headers=headers) as resp:
        assert resp.status == status
    assert len(receiver.deploys) == (1 if status == 201 else 0)


async def test_receiver_deploy_of_unknown_release_is_404(
    receiver: SentryReceiver, session: aiohttp.ClientSession
) -> None:
    """A deploy for a release that does not exist answers 404."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = receiver.url + RELEASES + "ghost/deploys/"
    async with session.post(url, json={"environment": "prod"}, headers=headers) as resp:
        assert resp.status == 404
        assert await resp.json() == {"detail": "The requested resource does not exist"}
