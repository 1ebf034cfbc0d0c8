"""Sentry forwarder over real HTTP against the strict Sentry receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from forwarders.base import Delivered, Event, PermanentFailure, RetryLater, SendContext
from forwarders.sentry import SentryConfig, SentryForwarder
from relay.delivery.http import AiohttpTransport
from relay.standins.base import Fault
from relay.standins.sentry import SentryReceiver
from tests.forwarder_support import deployment_event, post_raw, send_context, serving

TOKEN = "sntrys_test_token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONFIG = {
    "name": "sentry",
    "type": "sentry",
    "token": TOKEN,
    "org": "acme",
    "projects": ["web", "api"],
    "repository": "acme/web",
}


@pytest.fixture
async def receiver() -> AsyncIterator[SentryReceiver]:
    """A Sentry receiver for org `acme` with projects web and api."""
    async with serving(SentryReceiver(token=TOKEN, org="acme", projects=["web", "api"])) as server:
        yield server


def forwarder(url: str, **overrides: Any) -> SentryForwarder:
    """A Sentry forwarder pointed at `url`."""
    return SentryForwarder(SentryConfig.model_validate({**CONFIG, "url": url, **overrides}))


def event(event_type: str = "deployment.completed", **data: Any) -> Event:
    """A successful production deployment of web 1.2.3+7 ("Blue Falcon")."""
    release = {"version": "1.2.3+7", "code_name": "Blue Falcon", "commit_sha": "abc123"}
    return deployment_event(event_type, **{**release, **data})


def context(transport: AiohttpTransport, state: dict[str, Any] | None = None) -> SendContext:
    """A send context over the real transport."""
    return send_context(transport, state=state)


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
    receiver: SentryReceiver, body: dict[str, Any], field: str
) -> None:
    """Bad release bodies get 400 with a DRF-style error on the field."""
    status, answer = await post_raw(receiver.url + RELEASES, body, headers=AUTH)
    assert status == 400
    assert field in answer
    assert receiver.releases == {}


async def test_receiver_requires_bearer_token(receiver: SentryReceiver) -> None:
    """No or a wrong token answers 401."""
    body = {"version": "v1", "projects": ["web"]}
    assert (await post_raw(receiver.url + RELEASES, body))[0] == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await post_raw(receiver.url + RELEASES, body, headers=wrong))[0] == 401


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
    receiver: SentryReceiver, body: dict[str, Any], status: int
) -> None:
    """Deploys need an environment ≤64, a name ≤64 and projects of the release."""
    release = {"version": "web@1", "projects": ["web"]}
    assert (await post_raw(receiver.url + RELEASES, release, headers=AUTH))[0] == 201
    url = receiver.url + RELEASES + "web%401/deploys/"
    assert (await post_raw(url, body, headers=AUTH))[0] == status
    assert len(receiver.deploys) == (1 if status == 201 else 0)


async def test_receiver_deploy_of_unknown_release_is_404(receiver: SentryReceiver) -> None:
    """A deploy for a release that does not exist answers 404."""
    url = receiver.url + RELEASES + "ghost/deploys/"
    answer = await post_raw(url, {"environment": "prod"}, headers=AUTH)
    assert answer == (404, {"detail": "The requested resource does not exist"})
