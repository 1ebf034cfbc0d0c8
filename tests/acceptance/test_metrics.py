"""GET /metrics on a whole relay: events, attempts by outcome, latency, queue depth, oldest
pending age and forwarder state, in the Prometheus text format."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pytest_aiohttp import AiohttpClient

from relay.app import create_app
from relay.standins.base import Fault
from relay.standins.webhook import WebhookReceiver
from tests.acceptance.api import bearer, create
from tests.delivery_support import SECRET, engine_settings, eventually, free_port, webhook

Client = TestClient[Any, Any]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[WebhookReceiver, WebhookReceiver]]:
    """A healthy receiver and one that answers its first request with 410 Gone."""
    up, gone = WebhookReceiver(SECRET), WebhookReceiver(SECRET)
    gone.faults.append(Fault(410, {"error": "deleted"}))
    await up.start()
    await gone.start()
    yield up, gone
    await up.stop()
    await gone.stop()


async def scrape(client: Client) -> Samples:
    """Every sample of /metrics by (name, sorted labels)."""
    response = await client.get("/metrics")
    assert response.status == 200
    # The exposition format's own media type, its version included.
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples: Samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """One sample's value, None when absent."""
    return samples.get((name, tuple(sorted(labels.items()))))


async def test_metrics_describe_the_delivery_engine(
    aiohttp_client: AiohttpClient,
    tmp_path: Path,
    receivers: tuple[WebhookReceiver, WebhookReceiver],
) -> None:
    """Counters, latency histogram and per-forwarder gauges reflect what happened."""
    up, gone = receivers
    settings = engine_settings(
        tmp_path / "relay.db",
        [
            webhook("up", up.endpoint),
            webhook("gone", gone.endpoint),
            webhook("down", f"http://127.0.0.1:{free_port()}/", retry={"schedule": ["1h"]}),
        ],
        delivery={"circuit_threshold": 3, "circuit_cooldown": "1h"},
    )
    client = await aiohttp_client(create_app(settings))
    await create(client, "api", {"version": "1"})

    async def gone_disabled() -> bool:
        return value(await scrape(client), "relay_forwarder_state", forwarder="gone") == 2

    await eventually(gone_disabled)
    await create(client, "api", {"version": "2"})
    await create(client, "web", {"version": "3"}, kind="builds")

    async def settled() -> Samples | None:
        samples = await scrape(client)
        done = (
            value(samples, "relay_delivery_attempts_total", forwarder="up", outcome="delivered")
            == 3
            and value(samples, "relay_delivery_attempts_total", forwarder="down", outcome="retry")
            == 3
            # The gauges are read from the store at scrape time: wait until it agrees.
            and value(samples, "relay_queue_depth", forwarder="up") == 0
        )
        return samples if done else None

    samples = await eventually(settled)

    events = "relay_events_received_total"
    assert value(samples, events, type="deployment.created", component="api") == 2
    assert value(samples, events, type="build.created", component="web") == 1

    attempts = "relay_delivery_attempts_total"
    assert value(samples, attempts, forwarder="gone", outcome="dead") == 1
    assert value(samples, attempts, forwarder="gone", outcome="delivered") is None

    latency = "relay_delivery_latency_seconds"
    assert value(samples, latency + "_count", forwarder="up") == 3
    assert 0 < (value(samples, latency + "_sum", forwarder="up") or 0) < 3
    assert value(samples, latency + "_bucket", forwarder="up", le="+Inf") == 3
    assert value(samples, latency + "_bucket", forwarder="up", le="5.0") == 3
    assert value(samples, latency + "_count", forwarder="down") is None

    depth = "relay_queue_depth"
    assert value(samples, depth, forwarder="up") == 0
    assert value(samples, depth, forwarder="gone") == 2  # held while disabled
    assert value(samples, depth, forwarder="down") == 3
    age = "relay_oldest_pending_age_seconds"
    assert value(samples, age, forwarder="up") == 0
    assert 0 < (value(samples, age, forwarder="down") or 0) < 60

    state = "relay_forwarder_state"
    assert value(samples, state, forwarder="up") == 0  # active
    assert value(samples, state, forwarder="down") == 1  # circuit open after 3 failures
    assert value(samples, state, forwarder="gone") == 2  # disabled by the 410


async def test_metrics_need_no_token_and_reveal_no_secret(
    aiohttp_client: AiohttpClient,
    tmp_path: Path,
    receivers: tuple[WebhookReceiver, WebhookReceiver],
) -> None:
    """Prometheus scrapes without a token; labels carry forwarder names, never config."""
    up, _ = receivers
    settings = engine_settings(
        tmp_path / "relay.db",
        [webhook("up", up.endpoint, headers={"Authorization": "Bearer metrics-hdr-secret"})],
    )
    client = await aiohttp_client(create_app(settings))
    await create(client, "api", {"version": "1"})
    await eventually(lambda: up.events)
    response = await client.get("/metrics", headers=bearer("not-a-valid-token"))
    assert response.status == 200
    text = await response.text()
    for secret in (SECRET, up.endpoint, "metrics-hdr-secret"):
        assert secret not in text
    assert 'relay_forwarder_state{forwarder="up"} 0.0' in text
