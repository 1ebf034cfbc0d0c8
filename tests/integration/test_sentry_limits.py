"""Sentry's limits, enforced by relay and by the stand-in alike, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from forwarders.base import Delivered, Event, PermanentFailure, SendContext
from forwarders.sentry import SentryConfig, SentryForwarder
from relay.delivery.http import AiohttpTransport
from relay.standins.sentry import SentryReceiver
from tests.forwarder_support import deployment_event, post_raw, send_context, serving

TOKEN = "sntrys_integration"
RELEASES = "/api/0/organizations/acme/releases/"
CONFIG = {
    "name": "sentry",
    "type": "sentry",
    "token": TOKEN,
    "org": "acme",
    "projects": ["web"],
    "repository": "acme/web",
}


@pytest.fixture
async def receiver() -> AsyncIterator[SentryReceiver]:
    """A Sentry stand-in for org `acme`: projects web and api, repository acme/web."""
    server = SentryReceiver(token=TOKEN, org="acme", projects=["web", "api"])
    async with serving(server):
        yield server


def forwarder(url: str, **overrides: Any) -> SentryForwarder:
    """A Sentry forwarder pointed at `url`."""
    return SentryForwarder(SentryConfig.model_validate({**CONFIG, "url": url, **overrides}))


def event(**data: Any) -> Event:
    """A successful production deployment of web 1.2.3 at commit abc123."""
    return deployment_event("deployment.completed", **{"commit_sha": "abc123", **data})


def context(transport: AiohttpTransport) -> SendContext:
    """A send context over the real transport."""
    return send_context(transport)


def auth() -> dict[str, str]:
    """The stand-in's bearer token."""
    return {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "ci.example.com/1",
        "http://jenkins/job/1",
        "https://x.io/" + "a" * 200,
        "https://ci.example.c/1",
        "https://@ci.example.com/1",
        "https://:pw@ci.example.com/1",
    ],
)
async def test_release_without_a_url_sentry_would_refuse(
    receiver: SentryReceiver, transport: AiohttpTransport, url: str
) -> None:
    """meta_data.url that is no valid http(s) URL of at most 200 characters is left out."""
    outcome = await forwarder(receiver.url).send(event(meta_data={"url": url}), context(transport))
    assert isinstance(outcome, Delivered)
    assert receiver.releases["web@1.2.3"]["url"] is None
    assert len(receiver.deploys) == 1


@pytest.mark.parametrize(
    "url", ["https://ci.example.a-b/1", "https://user@ci.example.com/1", "https://ci.xn--p1ai/"]
)
async def test_stand_in_takes_the_urls_sentry_takes(receiver: SentryReceiver, url: str) -> None:
    """A hyphen inside the top-level domain, a user name, punycode: Django's validator
    accepts them, and so does the stand-in."""
    body = {"version": "v1", "projects": ["web"], "url": url}
    status, _ = await post_raw(receiver.url + RELEASES, body, headers=auth())
    assert status == 201


async def test_release_keeps_a_valid_url(
    receiver: SentryReceiver, transport: AiohttpTransport
) -> None:
    """A valid link is sent with the release."""
    url = "https://ci.example.com/jobs/42"
    await forwarder(receiver.url).send(event(meta_data={"url": url}), context(transport))
    assert receiver.releases["web@1.2.3"]["url"] == url


async def test_commit_longer_than_64_is_not_linked(
    receiver: SentryReceiver, transport: AiohttpTransport
) -> None:
    """A commit id Sentry would refuse is left out; the release and deploy are created."""
    commit = "f" * 65
    outcome = await forwarder(receiver.url).send(event(commit_sha=commit), context(transport))
    assert isinstance(outcome, Delivered)
    assert "commit not linked" in outcome.excerpt and "64" in outcome.excerpt
    assert receiver.releases["web@1.2.3"]["refs"] == []
    assert len(receiver.deploys) == 1


async def test_repository_not_set_up_still_gets_the_deploy(
    receiver: SentryReceiver, transport: AiohttpTransport
) -> None:
    """Sentry refuses refs to an unknown repository after creating the release: relay goes
    on to the deploy and says, in the outcome and a warning, what was left out and why."""
    target = forwarder(receiver.url, repository="acme/elsewhere")
    with capture_logs() as logs:
        outcome = await target.send(event(), context(transport))
    assert isinstance(outcome, Delivered) and outcome.status_code == 201
    assert "commit not linked" in outcome.excerpt
    assert "Invalid repository names: acme/elsewhere" in outcome.excerpt
    assert [r.status for r in receiver.received] == [400, 201]
    assert len(receiver.deploys) == 1
    [warning] = [e for e in logs if e["event"] == "sentry_commit_not_linked"]
    assert warning["log_level"] == "warning" and warning["repository"] == "acme/elsewhere"


async def test_padded_reserved_version_fails_before_any_request(
    receiver: SentryReceiver, transport: AiohttpTransport
) -> None:
    """ " latest" is reserved once stripped: a permanent failure, nothing sent."""
    target = forwarder(receiver.url, release="{version}")
    with pytest.raises(PermanentFailure, match="reserved"):
        await target.send(event(version=" latest"), context(transport))
    assert receiver.received == []


async def test_stand_in_answers_201_when_projects_are_added(receiver: SentryReceiver) -> None:
    """An existing release answers 201 when it gains projects, 208 when nothing changes."""
    url = receiver.url + RELEASES
    assert (await post_raw(url, {"version": "v1", "projects": ["web"]}, headers=auth()))[0] == 201
    status, body = await post_raw(url, {"version": "v1", "projects": ["api"]}, headers=auth())
    assert (status, body["projects"]) == (201, ["api", "web"])
    assert (await post_raw(url, {"version": "v1", "projects": ["web"]}, headers=auth()))[0] == 208


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": " latest"}, "version"),
        ({"version": ".. "}, "version"),
        ({"version": "v1", "url": "http://jenkins/1"}, "url"),
        ({"version": "v1", "url": "https://ci.example.c/1"}, "url"),
        ({"version": "v1", "url": "https://@ci.example.com/1"}, "url"),
        ({"version": "v1", "url": "https://x.io/" + "a" * 200}, "url"),
        ({"version": "v1", "refs": [{"repository": "acme/web", "commit": "a" * 65}]}, "refs"),
    ],
)
async def test_stand_in_refuses_what_sentry_refuses(
    receiver: SentryReceiver, body: dict[str, Any], field: str
) -> None:
    """Reserved names after stripping, invalid or long URLs, long commits: 400 on the field."""
    status, answer = await post_raw(
        receiver.url + RELEASES, {**body, "projects": ["web"]}, headers=auth()
    )
    assert status == 400 and field in answer
    assert receiver.releases == {}


async def test_stand_in_refuses_unknown_repository_after_creating_the_release(
    receiver: SentryReceiver,
) -> None:
    """Like Sentry: 400 {"refs": ["Invalid repository names: …"]}, the release kept."""
    refs = [{"repository": "other/repo", "commit": "abc"}]
    body = {"version": "v1", "projects": ["web"], "refs": refs}
    status, answer = await post_raw(receiver.url + RELEASES, body, headers=auth())
    assert (status, answer) == (400, {"refs": ["Invalid repository names: other/repo"]})
    assert receiver.releases["v1"]["refs"] == []
