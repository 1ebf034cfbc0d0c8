"""What the real services refuse, through a whole relay (SQLite, real HTTP) and the strict
stand-ins: relay sends what they accept, retries their transient answers, and a dead
delivery says the target's own reason."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from forwarders.grafana import tags_length
from relay.app import create_app
from relay.cli import main
from relay.standins.bugsnag import BugsnagReceiver
from relay.standins.grafana import GrafanaReceiver
from relay.standins.newrelic import NewRelicReceiver
from relay.standins.sentry import SentryReceiver
from tests.acceptance.api import Client, create, get_json
from tests.delivery_support import FAST_RETRY, engine_settings, eventually

# A well-formed key of a project the Bugsnag stand-in does not know.
UNKNOWN_BUGSNAG_KEY = "0123456789abcdef0123456789abcdef"
NEWRELIC_GUID = "MTIzNDU2fEFQTXxBUFBMSUNBVElPTnwx"


@dataclass
class Targets:
    """The stand-ins of the four services, serving on loopback."""

    grafana: GrafanaReceiver
    sentry: SentryReceiver
    bugsnag: BugsnagReceiver
    newrelic: NewRelicReceiver

    def forwarders(self) -> list[dict[str, Any]]:
        """A `[[forwarders]]` table for each, with a fast retry schedule."""
        common = {"timeout": "2s", "retry": FAST_RETRY}
        return [
            {"name": "grafana", "type": "grafana", "url": self.grafana.url,
             "token": "grafana-token", "tags": ["team:" + "platform-" * 30], **common},
            {"name": "sentry", "type": "sentry", "url": self.sentry.url, "token": "sentry-token",
             "org": "acme", "projects": ["web"], "repository": "acme/not-set-up", **common},
            {"name": "bugsnag", "type": "bugsnag", "url": self.bugsnag.url,
             "api_key": UNKNOWN_BUGSNAG_KEY, **common},
            {"name": "newrelic", "type": "newrelic", "url": self.newrelic.url,
             "api_key": "NRAK-TESTKEY", "entity_guid": NEWRELIC_GUID, **common},
        ]  # fmt: skip


@pytest.fixture
async def targets() -> AsyncIterator[Targets]:
    """Start the stand-ins (Bugsnag knowing one other project); stop them afterwards."""
    found = Targets(
        GrafanaReceiver(),
        SentryReceiver(),
        BugsnagReceiver(api_keys=["fedcba9876543210fedcba9876543210"]),
        NewRelicReceiver(),
    )
    receivers = [found.grafana, found.sentry, found.bugsnag, found.newrelic]
    for receiver in receivers:
        await receiver.start()
    yield found
    for receiver in receivers:
        await receiver.stop()


@pytest.fixture
async def relay(aiohttp_client: AiohttpClient, tmp_path: Path, targets: Targets) -> Client:
    """A relay delivering to every stand-in."""
    settings = engine_settings(tmp_path / "relay.db", targets.forwarders())
    return await aiohttp_client(create_app(settings))


async def deliveries(client: Client, record_id: str) -> dict[str, dict[str, Any]]:
    """The deployment's deliveries by forwarder, once none is pending any more."""

    async def check() -> dict[str, dict[str, Any]] | None:
        found = await get_json(client, f"/components/web/deployments/{record_id}/deliveries")
        if len(found) < 4 or any(d["status"] == "pending" for d in found):
            return None
        return {d["forwarder"]: d for d in found}

    return await eventually(check, timeout=10, what="every delivery settled")


async def test_what_the_services_refuse_is_not_sent_and_refusals_say_why(
    relay: Client, targets: Targets
) -> None:
    """A long version, an invalid link, an unknown repository and a rate limit all end
    delivered; the one real refusal (an unknown Bugsnag key) is dead with its reason."""
    targets.newrelic.limit_rate(1)
    body = {
        "version": "1.2.3-" + "rc" * 90,
        "stage": "production",
        "commit_sha": "abc123",
        "meta_data": {"url": "ci-server/job/7"},
    }
    dep = await create(relay, "web", body)
    found = await deliveries(relay, dep)

    assert {name: d["status"] for name, d in found.items()} == {
        "grafana": "delivered",
        "sentry": "delivered",
        "bugsnag": "dead",
        "newrelic": "delivered",
    }
    [annotation] = targets.grafana.annotations.values()
    assert "component:web" in annotation["tags"] and tags_length(annotation["tags"]) <= 500
    assert any(tag.endswith("…") for tag in annotation["tags"])  # there was more to cut
    [release] = targets.sentry.releases.values()
    assert release["url"] is None and len(targets.sentry.deploys) == 1
    sentry_attempts = found["sentry"]["attempt_log"]
    assert "Invalid repository names: acme/not-set-up" in sentry_attempts[-1]["response_excerpt"]
    newrelic_attempts = [a["outcome"] for a in found["newrelic"]["attempt_log"]]
    assert newrelic_attempts == ["retry", "delivered"]
    assert "TOO_MANY_REQUESTS" not in found["newrelic"]["attempt_log"][0]["error"]

    dead = await get_json(relay, "/deliveries?status=dead")
    assert [(d["forwarder"], d["last_error"]) for d in dead] == [
        ("bugsnag", "Bugsnag answered HTTP 400: apiKey invalid")
    ]


@pytest.mark.parametrize("size", [16, 65])
def test_check_config_refuses_a_webhook_secret_of_the_wrong_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], size: int
) -> None:
    """A whsec_ secret must decode to 24-64 bytes: check-config names the forwarder and why,
    without showing the secret."""
    secret = "whsec_" + base64.b64encode(b"k" * size).decode()
    path = tmp_path / "relay.toml"
    path.write_text(
        f'[[forwarders]]\nname = "deploys-hook"\ntype = "webhook"\n'
        f'url = "https://hooks.example.com/relay"\nsecret = "{secret}"\n',
        encoding="utf-8",
    )
    assert main(["check-config", str(path)]) != 0
    captured = capsys.readouterr()
    [line] = [x for x in captured.err.splitlines() if "forwarders[0].secret" in x]
    assert "'deploys-hook'" in line and "24 to 64" in line and f"decodes to {size}" in line
    assert secret not in captured.out + captured.err
