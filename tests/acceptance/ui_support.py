"""The dashboard's browser tests: a real `relay serve` with the five stand-in targets, and
a page that records console errors, dialogs and every request it makes."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from relay.demo import SECRET, _forwarders
from relay.standins.base import Receiver
from relay.standins.bugsnag import BugsnagReceiver
from relay.standins.grafana import GrafanaReceiver
from relay.standins.newrelic import NewRelicReceiver
from relay.standins.sentry import SentryReceiver
from relay.standins.webhook import WebhookReceiver
from tests.acceptance.instance import Instance
from tests.support import ADMIN_TOKEN, CI_TOKEN, TOKENS

TARGETS = ("bugsnag", "grafana", "newrelic", "sentry", "webhook")
VIEWER_TOKEN = "viewer-token-000000001"
# Read-only and limited to the web-* components.
VIEWER = {
    "name": "viewer",
    "token": VIEWER_TOKEN,
    "scopes": ["events:read"],
    "components": ["web-*"],
}
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}


def screenshot_dir() -> Path:
    """Where the tests save their screenshots: $UI_SCREENSHOTS, else a temp folder."""
    chosen = os.environ.get("UI_SCREENSHOTS") or str(Path(tempfile.gettempdir()) / "relay-ui")
    path = Path(chosen)
    path.mkdir(parents=True, exist_ok=True)
    return path


def relay_config(db: Path, urls: dict[str, str]) -> str:
    """A relay.toml on `db` with the test tokens and a forwarder per stand-in target."""
    lines = [
        "[server]", 'host = "127.0.0.1"',
        "[storage]", f"url = {json.dumps(f'sqlite:///{db}')}",
        "[logging]", 'format = "json"',
        "[security]", 'allow_networks = ["127.0.0.0/8"]',
        "[delivery]", 'poll_interval = "0.2s"',
        "[feed]", 'poll_interval = "0.1s"', 'ping_interval = "1s"',
    ]  # fmt: skip
    for token in [*TOKENS, VIEWER]:
        lines.append("[[tokens]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in token.items()]
    for forwarder in _forwarders(urls):
        lines.append("[[forwarders]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in forwarder.items()]
    return "\n".join(lines) + "\n"


@dataclass
class Relay:
    """A running relay, its stand-in targets and an HTTP client for the API."""

    instance: Instance
    targets: dict[str, Receiver]
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        """Where it serves."""
        return self.instance.url

    async def api(
        self, method: str, path: str, body: Any = None, token: str = CI_TOKEN
    ) -> tuple[int, Any]:
        """One API call with a Bearer token: status and parsed JSON (or text)."""
        headers = {"Authorization": f"Bearer {token}"}
        kwargs: dict[str, Any] = {"json": body} if not isinstance(body, str) else {"data": body}
        if body is None:
            kwargs = {}
        async with self.http.request(method, self.url + path, headers=headers, **kwargs) as r:
            text = await r.text()
            try:
                return r.status, json.loads(text)
            except ValueError:
                return r.status, text

    async def deploy(self, component: str, **fields: Any) -> str:
        """POST a deployment; its id."""
        body = {"version": "1.0.0", "stage": "production", **fields}
        status, answer = await self.api("POST", f"/components/{component}/deployments", body)
        assert status == 201, answer
        return str(answer["id"])


@contextlib.asynccontextmanager
async def running_relay(tmp: Path) -> AsyncIterator[Relay]:
    """relay serve (SQLite in `tmp`) with the five stand-in targets, stopped afterwards."""
    targets: dict[str, Receiver] = {
        "grafana": GrafanaReceiver(),
        "sentry": SentryReceiver(),
        "bugsnag": BugsnagReceiver(),
        "newrelic": NewRelicReceiver(),
        "webhook": WebhookReceiver(SECRET),
    }
    urls = {name: await r.start() for name, r in targets.items()}
    urls["webhook"] = targets["webhook"].url + "/hook"
    config = tmp / "relay.toml"
    config.write_text(relay_config(tmp / "relay.db", urls), encoding="utf-8")
    instance = Instance(config, tmp / "relay.log")
    async with aiohttp.ClientSession() as http:
        try:
            await instance.start(http)
            yield Relay(instance, targets, http)
        finally:
            await instance.stop()
            for target in targets.values():
                await target.stop()


@dataclass
class Watched:
    """What a page did that a test checks: console errors, dialogs, requests."""

    origin: str
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    @property
    def foreign(self) -> list[str]:
        """Requests that left for another origin."""
        return [u for u in self.requests if not u.startswith(self.origin + "/")]


async def open_page(
    browser: Any, relay: Relay, viewport: dict[str, int] = WIDE
) -> tuple[Any, Watched]:
    """A new page at 1280 px (or `viewport`) that records what it does."""
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    watched = Watched(relay.url)
    page.on("console", lambda m: watched.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: watched.errors.append(str(e)))
    page.on("request", lambda r: watched.requests.append(r.url))

    async def dismiss(dialog: Any) -> None:
        watched.dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", dismiss)
    return page, watched


async def sign_in(page: Any, relay: Relay, token: str = ADMIN_TOKEN) -> None:
    """Open the dashboard and sign in with `token` through the form."""
    await page.goto(relay.url + "/")
    await page.fill('input[type="password"][name="token"]', token)
    await page.click('button[type="submit"]')
    await page.wait_for_selector("#nav:not([hidden])")
    await page.wait_for_selector("#view:not([aria-busy]) h1")
