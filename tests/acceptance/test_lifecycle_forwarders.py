"""Lifecycle-aware forwarders through a whole relay (SQLite, real HTTP) and the strict mock
receivers: Grafana makes one region per deployment, Sentry/Bugsnag/New Relic only hear
about successful ends, webhooks get every event (releases too), in order."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from relay.app import create_app
from relay.standins.base import Fault
from relay.standins.bugsnag import BugsnagReceiver
from relay.standins.grafana import GrafanaReceiver
from relay.standins.newrelic import NewRelicReceiver
from relay.standins.sentry import SentryReceiver
from relay.standins.webhook import WebhookReceiver
from tests.acceptance.api import Client, bearer, create, get_json, post_json
from tests.delivery_support import FAST_RETRY, SECRET, engine_settings, eventually, webhook

BUGSNAG_KEY = "0123456789abcdef0123456789abcdef"
NEWRELIC_GUID = "MTIzNDU2fEFQTXxBUFBMSUNBVElPTnwx"


@dataclass
class Targets:
    """The five mock receivers, serving on loopback."""

    grafana: GrafanaReceiver
    sentry: SentryReceiver
    bugsnag: BugsnagReceiver
    newrelic: NewRelicReceiver
    hook: WebhookReceiver

    def forwarders(self) -> list[dict[str, Any]]:
        """A `[[forwarders]]` table for each receiver, with a fast retry schedule."""
        common = {"timeout": "2s", "retry": FAST_RETRY}
        return [
            {"name": "grafana", "type": "grafana", "url": self.grafana.url,
             "token": "grafana-token", "tags": ["deploy"], **common},
            {"name": "sentry", "type": "sentry", "url": self.sentry.url, "token": "sentry-token",
             "org": "acme", "projects": ["web"], **common},
            {"name": "bugsnag", "type": "bugsnag", "url": self.bugsnag.url,
             "api_key": BUGSNAG_KEY, **common},
            {"name": "newrelic", "type": "newrelic", "url": self.newrelic.url,
             "api_key": "NRAK-TESTKEY", "entity_guid": NEWRELIC_GUID, **common},
            webhook("hook", self.hook.endpoint),
        ]  # fmt: skip


@pytest.fixture
async def targets() -> AsyncIterator[Targets]:
    """Start every mock receiver; stop them afterwards."""
    found = Targets(
        GrafanaReceiver(),
        SentryReceiver(),
        BugsnagReceiver(),
        NewRelicReceiver(),
        WebhookReceiver(SECRET),
    )
    receivers = [found.grafana, found.sentry, found.bugsnag, found.newrelic, found.hook]
    for receiver in receivers:
        await receiver.start()
    yield found
    for receiver in receivers:
        await receiver.stop()


@pytest.fixture
async def relay(aiohttp_client: AiohttpClient, tmp_path: Path, targets: Targets) -> Client:
    """A relay delivering to every target."""
    settings = engine_settings(tmp_path / "relay.db", targets.forwarders())
    return await aiohttp_client(create_app(settings))


async def patch(client: Client, record_id: str, status: str) -> None:
    """PATCH the status of an `web` deployment, asserting 200."""
    response = await client.patch(
        f"/components/web/deployments/{record_id}",
        data=json.dumps({"status": status}),
        headers={"Content-Type": "application/json", **bearer()},
    )
    assert response.status == 200, await response.text()


async def settled(client: Client, record_id: str, count: int) -> dict[tuple[str, str], str]:
    """Wait until the deployment's `count` deliveries all left `pending`:
    (forwarder, event type) → status."""

    async def check() -> dict[tuple[str, str], str] | None:
        found = await get_json(client, f"/components/web/deployments/{record_id}/deliveries")
        if len(found) < count or any(d["status"] == "pending" for d in found):
            return None
        return {(d["forwarder"], d["event_type"]): d["status"] for d in found}

    return await eventually(check, timeout=10, what="every delivery settled")


async def test_started_then_completed(relay: Client, targets: Targets) -> None:
    """Grafana: one POST then one PATCH of the same annotation; Sentry (with dateStarted
    and dateFinished), Bugsnag and New Relic act once, on the successful completion."""
    dep = await create(
        relay, "web", {"version": "1.2.3", "stage": "production", "status": "queued"}
    )
    await patch(relay, dep, "building")
    await patch(relay, dep, "success")
    outcomes = await settled(relay, dep, 3 * 5)
    assert [(r.method, r.path.split("?")[0]) for r in targets.grafana.received] == [
        ("POST", "/api/annotations"),
        ("PATCH", "/api/annotations/1"),
    ]
    (annotation,) = targets.grafana.annotations.values()
    assert "result:success" in annotation["tags"] and annotation["timeEnd"] > annotation["time"]
    assert outcomes[("grafana", "deployment.status_changed")] == "skipped"
    (deploy,) = targets.sentry.deploys
    record = await get_json(relay, f"/components/web/deployments/{dep}")
    assert deploy["environment"] == "production"
    assert deploy["dateStarted"] == record["started_at"]
    assert deploy["dateFinished"] == record["finished_at"]
    assert len(targets.bugsnag.builds) == 1 and len(targets.newrelic.change_deployments) == 1
    for name in ("sentry", "bugsnag", "newrelic"):
        assert outcomes[(name, "deployment.started")] == "skipped"
        assert outcomes[(name, "deployment.status_changed")] == "skipped"
        assert outcomes[(name, "deployment.completed")] == "delivered"
    types = [e.payload["type"] for e in targets.hook.events]
    assert types == ["deployment.started", "deployment.status_changed", "deployment.completed"]


async def test_failure_and_cancel_close_the_region_only(relay: Client, targets: Targets) -> None:
    """A failed or cancelled deployment ends its Grafana region with the result tag; the
    release trackers are told nothing."""
    failed = await create(
        relay, "web", {"version": "1.0", "stage": "production", "status": "building"}
    )
    cancelled = await create(
        relay, "web", {"version": "1.1", "stage": "production", "status": "queued"}
    )
    await patch(relay, failed, "build-error")
    response = await relay.delete(f"/components/web/deployments/{cancelled}", headers=bearer())
    assert response.status == 200
    outcomes = {**await settled(relay, failed, 10), **await settled(relay, cancelled, 10)}
    tags = sorted(
        next(t for t in a["tags"] if t.startswith("result:"))
        for a in targets.grafana.annotations.values()
    )
    assert tags == ["result:aborted", "result:build-error"]
    assert [r.method for r in targets.grafana.received].count("PATCH") == 2
    assert targets.sentry.received == targets.bugsnag.received == []
    assert targets.newrelic.received == []
    assert outcomes[("sentry", "deployment.cancelled")] == "skipped"
    assert outcomes[("hook", "deployment.cancelled")] == "delivered"


async def test_completed_never_overtakes_its_started(relay: Client, targets: Targets) -> None:
    """While the started annotation is being retried, the completion waits for it: one
    annotation, patched after it was created."""
    targets.grafana.faults.append(Fault(503, {"message": "busy"}))
    dep = await create(
        relay, "web", {"version": "2.0", "stage": "production", "status": "starting"}
    )
    await patch(relay, dep, "success")
    await settled(relay, dep, 2 * 5)
    assert [(r.method, r.status) for r in targets.grafana.received] == [
        ("POST", 503),
        ("POST", 200),
        ("PATCH", 200),
    ]
    assert len(targets.grafana.annotations) == 1


async def test_release_created_reaches_webhooks_only(relay: Client, targets: Targets) -> None:
    """A release is delivered to the webhook; the built-in trackers skip it."""
    one = await create(relay, "web", {"version": "1.0", "stage": "production"})
    two = await create(relay, "api", {"version": "4.2", "stage": "production"})
    response = await post_json(relay, "/releases", {"name": "Spring", "deployments": [one, two]})
    assert response.status == 201, await response.text()
    release = await response.json()

    def delivered() -> list[dict[str, Any]]:
        return [e.payload for e in targets.hook.events if e.payload["type"] == "release.created"]

    (payload,) = await eventually(delivered, what="release.created at the webhook")
    data = payload["data"]
    assert (data["id"], data["name"], data["components"]) == (
        release["id"],
        "Spring",
        ["api", "web"],
    )
    assert [d["id"] for d in data["deployments"]] == [one, two]

    async def skipped() -> list[dict[str, Any]]:
        found = await get_json(relay, "/deliveries?limit=1000")
        mine = [d for d in found if d["event_type"] == "release.created"]
        return mine if len(mine) == 5 and all(d["status"] != "pending" for d in mine) else []

    statuses = {d["forwarder"]: d["status"] for d in await eventually(skipped)}
    assert statuses == {
        "grafana": "skipped",
        "sentry": "skipped",
        "bugsnag": "skipped",
        "newrelic": "skipped",
        "hook": "delivered",
    }


async def test_one_call_deployment_reaches_every_tracker(relay: Client, targets: Targets) -> None:
    """deployment.created (recorded in one call) is acted on once by each target."""
    dep = await create(relay, "web", {"version": "3.0", "stage": "production"})
    outcomes = await settled(relay, dep, 5)
    assert set(outcomes.values()) == {"delivered"}
    assert len(targets.sentry.deploys) == len(targets.bugsnag.builds) == 1
    assert len(targets.newrelic.change_deployments) == 1
    assert [r.method for r in targets.grafana.received] == ["POST"]
