"""Bugsnag forwarder over real HTTP against the strict mock Build API receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from forwarders.base import Delivered, Event, PermanentFailure, RetryLater, SendContext
from forwarders.bugsnag import BugsnagConfig, BugsnagForwarder
from relay.delivery.http import AiohttpTransport
from relay.standins.base import Fault
from relay.standins.bugsnag import BugsnagReceiver
from tests.forwarder_support import deployment_event, post_raw, send_context, serving

NOW = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)
API_KEY = "c9d60ae4c7e70c4b6c4ebd3e8056d2b8"
CONFIG = {
    "name": "bugsnag",
    "type": "bugsnag",
    "api_key": API_KEY,
    "repository": "https://github.com/acme/web",
}


@pytest.fixture
async def receiver() -> AsyncIterator[BugsnagReceiver]:
    """A Build API receiver on a free loopback port."""
    async with serving(BugsnagReceiver()) as server:
        yield server


def forwarder(receiver: BugsnagReceiver, **overrides: Any) -> BugsnagForwarder:
    """A Bugsnag forwarder pointed at `receiver`."""
    values = {**CONFIG, "url": receiver.url, **overrides}
    return BugsnagForwarder(BugsnagConfig.model_validate(values))


def event(event_type: str = "deployment.created", **data: Any) -> Event:
    """A successful deployment of web 1.2.3 to production on web-1, by user 7."""
    meta = {"user_id": 7, "pipeline": {"id": 12, "green": True}}
    return deployment_event(event_type, at=NOW, **{"host": "web-1", "meta_data": meta, **data})


def context(transport: AiohttpTransport) -> SendContext:
    """A send context over the real transport."""
    return send_context(transport, now=NOW)


async def test_deployment_is_accepted_without_auth_header(
    receiver: BugsnagReceiver, transport: AiohttpTransport
) -> None:
    """A deployment is accepted as a build with string metadata and source control."""
    outcome = await forwarder(receiver).send(event(), context(transport))
    assert outcome == Delivered(200, "")
    (build,) = receiver.builds
    assert build["appVersion"] == "1.2.3"
    assert build["releaseStage"] == "production"
    assert build["builderName"] == "7"
    assert build["sourceControl"]["provider"] == "github"
    assert build["metadata"] == {
        "user_id": "7",
        "pipeline.id": "12",
        "pipeline.green": "true",
        "branch": "main",
        "host": "web-1",
    }
    assert "Authorization" not in receiver.accepted[0].headers
    assert receiver.accepted[0].headers["Idempotency-Key"] == "dlv-1"


async def test_build_and_completed_events_are_accepted(
    receiver: BugsnagReceiver, transport: AiohttpTransport
) -> None:
    """build.created and a successful deployment.completed both reach Bugsnag."""
    target = forwarder(receiver, repository=None)
    build = event("build.created", kind="build", stage=None, host=None)
    assert isinstance(await target.send(build, context(transport)), Delivered)
    done = event("deployment.completed")
    assert isinstance(await target.send(done, context(transport)), Delivered)
    assert [b.get("releaseStage") for b in receiver.builds] == [None, "production"]
    assert receiver.rejected == []


async def test_warnings_reach_the_attempt_excerpt(transport: AiohttpTransport) -> None:
    """Warnings in the 200 answer become the delivered excerpt."""
    async with serving(BugsnagReceiver(warnings=["releaseStage unknown"])) as server:
        outcome = await forwarder(server).send(event(), context(transport))
    assert outcome == Delivered(200, "releaseStage unknown")


async def test_rate_limit_retries_then_succeeds(
    receiver: BugsnagReceiver, transport: AiohttpTransport
) -> None:
    """A 429 with Retry-After is retried later; the retry records one build."""
    receiver.faults.append(Fault(429, {"errors": ["slow down"]}, {"Retry-After": "30"}))
    target = forwarder(receiver)
    with pytest.raises(RetryLater) as caught:
        await target.send(event(), context(transport))
    assert caught.value.at == datetime(2024, 5, 1, 12, 5, 30, tzinfo=UTC)
    assert isinstance(await target.send(event(), context(transport)), Delivered)
    assert len(receiver.builds) == 1


async def test_rejected_build_is_permanent(
    receiver: BugsnagReceiver, transport: AiohttpTransport
) -> None:
    """A 400 from the receiver (a key the config would refuse, sent anyway) is permanent."""
    target = forwarder(receiver)
    target.config.api_key = SecretStr("not-hex")  # bypasses the config check
    with pytest.raises(PermanentFailure) as caught:
        await target.send(event(), context(transport))
    assert caught.value.status_code == 400
    assert receiver.builds == []


VALID = {"apiKey": API_KEY, "appVersion": "1.2.3"}
SOURCE = {"provider": "github", "repository": "https://github.com/a/b", "revision": "abc"}


async def test_receiver_accepts_minimal_build_without_auth(receiver: BugsnagReceiver) -> None:
    """apiKey and appVersion suffice; no Authorization header is needed."""
    assert await post_raw(f"{receiver.url}/", VALID) == (200, {"status": "ok"})
    assert receiver.builds == [VALID]


@pytest.mark.parametrize(
    "body",
    [
        {"appVersion": "1.2.3"},
        {**VALID, "apiKey": "0123"},
        {**VALID, "apiKey": "z" * 32},
        {**VALID, "apiKey": 12345678901234567890123456789012},
        {"apiKey": API_KEY},
        {**VALID, "appVersion": ""},
        {**VALID, "appVersion": 123},
        {**VALID, "releaseStage": 1},
        {**VALID, "builderName": ["me"]},
        {**VALID, "autoAssignRelease": "yes"},
        {**VALID, "sourceControl": {**SOURCE, "revision": ""}},
        {**VALID, "sourceControl": {"provider": "github", "repository": "https://x"}},
        {**VALID, "sourceControl": {**SOURCE, "provider": "sourcehut"}},
        {**VALID, "sourceControl": "github"},
        {**VALID, "metadata": {"job": 7}},
        {**VALID, "metadata": {"nested": {"a": "b"}}},
        {**VALID, "metadata": ["a"]},
        ["not", "an", "object"],
        b"{not json",
    ],
)
async def test_receiver_rejects_invalid_builds(receiver: BugsnagReceiver, body: Any) -> None:
    """Every documented constraint is enforced with a 400 and an errors list."""
    status, answer = await post_raw(f"{receiver.url}/", body)
    assert status == 400
    assert isinstance(answer["errors"], list)
    assert answer["errors"]
    assert receiver.builds == []


async def test_receiver_reports_every_problem_at_once(receiver: BugsnagReceiver) -> None:
    """All the problems of a body come back in one errors list."""
    status, answer = await post_raw(f"{receiver.url}/", {"metadata": {"n": 1}})
    assert status == 400
    assert answer["errors"] == [
        "apiKey is required",
        "appVersion is required",
        "metadata.n must be a string",
    ]
