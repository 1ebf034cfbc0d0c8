"""Bugsnag's two instances: the API key decides which Build API host gets the build."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from forwarders.base import Delivered, PermanentFailure
from forwarders.bugsnag import BugsnagConfig, BugsnagForwarder
from relay.delivery.http import AiohttpTransport
from relay.standins.bugsnag import BugsnagReceiver
from tests.forwarder_support import RoutedTransport, deployment_event, send_context, serving

BUGSNAG_KEY = "c9d60ae4c7e70c4b6c4ebd3e8056d2b8"
INSIGHTHUB_KEY = "00000ae4c7e70c4b6c4ebd3e8056d2b8"


@pytest.fixture
async def hosts() -> AsyncIterator[tuple[BugsnagReceiver, BugsnagReceiver]]:
    """Stand-ins of build.bugsnag.com and build.bugsnag.smartbear.com, each knowing
    only the key of its own project."""
    async with (
        serving(BugsnagReceiver(api_keys=[BUGSNAG_KEY])) as bugsnag,
        serving(BugsnagReceiver(api_keys=[INSIGHTHUB_KEY])) as insighthub,
    ):
        yield bugsnag, insighthub


def routed(
    real: AiohttpTransport, hosts: tuple[BugsnagReceiver, BugsnagReceiver]
) -> RoutedTransport:
    """The real transport with both public hosts routed to their stand-ins."""
    bugsnag, insighthub = hosts
    routes = {
        "https://build.bugsnag.com": bugsnag.url,
        "https://build.bugsnag.smartbear.com": insighthub.url,
    }
    return RoutedTransport(real, routes)


def forwarder(api_key: str, url: str | None = None) -> BugsnagForwarder:
    """A Bugsnag forwarder with `api_key` and no url unless given."""
    values = {"name": "b", "type": "bugsnag", "api_key": api_key, "url": url}
    return BugsnagForwarder(BugsnagConfig.model_validate(values))


@pytest.mark.parametrize(
    ("key", "origin", "index"),
    [
        (INSIGHTHUB_KEY, "https://build.bugsnag.smartbear.com", 1),
        (BUGSNAG_KEY, "https://build.bugsnag.com", 0),
    ],
)
async def test_the_key_chooses_the_host(
    hosts: tuple[BugsnagReceiver, BugsnagReceiver],
    transport: AiohttpTransport,
    key: str,
    origin: str,
    index: int,
) -> None:
    """A key beginning 00000 is InsightHub's: its build goes to build.bugsnag.smartbear.com."""
    via = routed(transport, hosts)
    outcome = await forwarder(key).send(deployment_event("deployment.created"), send_context(via))
    assert isinstance(outcome, Delivered)
    assert via.origins == [origin]
    assert [len(h.builds) for h in hosts] == [int(index == 0), int(index == 1)]


async def test_url_overrides_the_key(
    hosts: tuple[BugsnagReceiver, BugsnagReceiver], transport: AiohttpTransport
) -> None:
    """With `url` set, every key goes there: an on-premise install, whatever the key."""
    via = routed(transport, hosts)
    target = forwarder(INSIGHTHUB_KEY, url="https://build.bugsnag.com")
    with pytest.raises(PermanentFailure) as info:
        await target.send(deployment_event("deployment.created"), send_context(via))
    assert via.origins == ["https://build.bugsnag.com"]
    # The stand-in knows only its own projects, as each real instance does.
    assert info.value.reason == "Bugsnag answered HTTP 400: apiKey invalid"
