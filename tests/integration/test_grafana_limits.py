"""Grafana's `[annotations] tags_length`, enforced by relay and by the stand-in alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from forwarders.base import Delivered, Event, SendContext
from forwarders.grafana import GrafanaConfig, GrafanaForwarder, tags_length
from relay.delivery.http import AiohttpTransport
from relay.standins.grafana import GrafanaReceiver
from tests.forwarder_support import NOW, deployment_event, post_raw, send_context, serving

TOKEN = "glsa_integration_token"
# Two-byte characters: 200 of them are 400 bytes, which is what Grafana counts.
LONG_VERSION = "é" * 200
OWNER_TAG = "owner:" + "ü" * 60


@pytest.fixture
async def receiver() -> AsyncIterator[GrafanaReceiver]:
    """A Grafana stand-in with the default tags_length of 500."""
    async with serving(GrafanaReceiver(token=TOKEN)) as server:
        yield server


def forwarder(url: str, **overrides: Any) -> GrafanaForwarder:
    """A Grafana forwarder pointed at `url`, with one long configured tag."""
    values = {"name": "g", "type": "grafana", "token": TOKEN, "url": url, "tags": [OWNER_TAG]}
    return GrafanaForwarder(GrafanaConfig.model_validate({**values, **overrides}))


def event(event_type: str = "deployment.created", **data: Any) -> Event:
    """A deployment of web at the long version to a long-named stage."""
    fields = {"version": LONG_VERSION, "stage": "production-eu-west-1-canary"}
    return deployment_event(event_type, **{**fields, **data})


def context(transport: AiohttpTransport, shared: dict[str, Any] | None = None) -> SendContext:
    """A send context over the real transport."""
    return send_context(transport, now=NOW, shared=shared)


async def test_long_tags_are_cut_to_grafanas_limit(
    receiver: GrafanaReceiver, transport: AiohttpTransport
) -> None:
    """Tags over 500 bytes (under 500 characters) are cut, the component tag kept whole."""
    outcome = await forwarder(receiver.url).send(event(), context(transport))
    assert isinstance(outcome, Delivered)
    [annotation] = receiver.annotations.values()
    tags = annotation["tags"]
    assert "component:web" in tags and "result:success" in tags
    assert tags_length(tags) <= 500
    version = next(t for t in tags if t.startswith("version:"))
    assert version.endswith("…") and len(version) < len("version:" + LONG_VERSION)


async def test_the_patch_of_a_region_is_cut_too(
    receiver: GrafanaReceiver, transport: AiohttpTransport
) -> None:
    """Closing a region PATCHes tags within the limit as well."""
    target = forwarder(receiver.url)
    shared: dict[str, Any] = {}
    started = event("deployment.started", version="1.0", result=None, status="building")
    assert isinstance(await target.send(started, context(transport, shared)), Delivered)
    completed = event("deployment.completed")
    assert isinstance(await target.send(completed, context(transport, shared)), Delivered)
    [annotation] = receiver.annotations.values()
    assert "component:web" in annotation["tags"] and tags_length(annotation["tags"]) <= 500


async def test_a_raised_limit_keeps_the_tags_whole(transport: AiohttpTransport) -> None:
    """With tags_length raised on both sides, nothing is cut (each value within the 100
    characters of Grafana's tag columns, the whole over 500 bytes)."""
    version, team = "é" * 100, "team:" + "ö" * 60
    async with serving(GrafanaReceiver(token=TOKEN, tags_length=2000)) as server:
        target = forwarder(server.url, tags_length=2000, tags=[OWNER_TAG, team])
        outcome = await target.send(event(version=version), context(transport))
        assert isinstance(outcome, Delivered)
        [annotation] = server.annotations.values()
    assert tags_length(annotation["tags"]) > 500
    assert {f"version:{version}", OWNER_TAG, team} <= set(annotation["tags"])


async def test_a_value_longer_than_grafanas_tag_column_is_cut(
    receiver: GrafanaReceiver, transport: AiohttpTransport
) -> None:
    """Grafana keeps a tag's key and value in 100-character columns (a longer one is a 500
    on PostgreSQL and MySQL): a 150-character version, within tags_length, is cut to 100."""
    version = "v" * 150
    target = forwarder(receiver.url, tags=[], tags_length=2000)
    outcome = await target.send(event(version=version), context(transport))
    assert isinstance(outcome, Delivered)
    [annotation] = receiver.annotations.values()
    [tag] = [t for t in annotation["tags"] if t.startswith("version:")]
    assert tag == "version:" + "v" * 99 + "…"


async def test_the_stand_in_refuses_a_value_past_the_column_as_grafana_does(
    receiver: GrafanaReceiver,
) -> None:
    """The stand-in answers a 101-character tag value with Grafana's 500."""
    body = {"text": "x", "time": 1, "tags": ["version:" + "v" * 101]}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    status, answer = await post_raw(receiver.url + "/api/annotations", body, headers=headers)
    assert status == 500 and answer == {"message": "Failed to save annotation"}


async def test_stand_in_refuses_tags_over_the_limit_as_grafana_does() -> None:
    """501 bytes of tags: 400 annotations.tag-limit-exceeded; 500 bytes are accepted (by a
    Grafana whose tag columns are wide enough for the one long tag)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with serving(GrafanaReceiver(token=TOKEN, tag_part_length=512)) as receiver:
        url = receiver.url + "/api/annotations"
        # ["…"] is 4 bytes around the tag: 496 bytes of tag make exactly 500.
        for size, expected in ((496, 200), (497, 400)):
            body = {"text": "t", "time": 1, "tags": ["a" * size]}
            status, answer = await post_raw(url, body, headers=headers)
            assert status == expected
    assert answer == {
        "message": "Tags length exceeds the maximum allowed.",
        "messageId": "annotations.tag-limit-exceeded",
        "statusCode": 400,
    }


async def test_stand_in_stores_tags_as_grafana_does(receiver: GrafanaReceiver) -> None:
    """Trimmed, cut at a second colon, empty keys and repeats dropped."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    tags = [" a : b ", "v:1:2", ":x", "a:b", "plain"]
    body = {"text": "t", "time": 1, "tags": tags}
    status, _ = await post_raw(receiver.url + "/api/annotations", body, headers=headers)
    assert status == 200
    [annotation] = receiver.annotations.values()
    assert annotation["tags"] == ["a:b", "v:1", "plain"]
