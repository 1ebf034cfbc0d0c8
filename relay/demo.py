"""`relay demo`: relay plus local stand-ins for all five targets, one sample deployment."""

from __future__ import annotations

import asyncio
import base64
import json
import tempfile
import textwrap
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import aiohttp
from aiohttp import web

from relay.app import create_app
from relay.logging import configure
from relay.settings import build_settings
from relay.standins.base import Receiver
from relay.standins.bugsnag import BugsnagReceiver
from relay.standins.grafana import GrafanaReceiver
from relay.standins.newrelic import NewRelicReceiver
from relay.standins.sentry import SentryReceiver
from relay.standins.webhook import WebhookReceiver

TOKEN = "demo-token-0123456789"
SECRET = "whsec_" + base64.b64encode(b"relay-demo-signing-secret-32byte").decode()
SAMPLE = {
    "version": "v1.4.2",
    "result": "success",
    "stage": "production",
    "host": "web-1.example.com",
    "code_name": "Funky Fünke",
    "commit_sha": "b927e3797fc56fb8bc093d59ee7a624dafddadd2",
    "branch": "main",
    "meta_data": {"user_id": "octocat", "url": "https://ci.example.com/jobs/42"},
}


def _forwarders(urls: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"name": "grafana", "type": "grafana", "url": urls["grafana"], "token": "grafana-token",
         "tags": ["deploy"]},
        {"name": "sentry", "type": "sentry", "url": urls["sentry"], "token": "sentry-token",
         "org": "acme", "projects": ["web"]},
        {"name": "bugsnag", "type": "bugsnag", "url": urls["bugsnag"] + "/",
         "api_key": "0123456789abcdef0123456789abcdef"},
        {"name": "newrelic", "type": "newrelic", "url": urls["newrelic"], "api_key": "NRAK-TESTKEY",
         "entity_guid": "MTIzNDU2fEFQTXxBUFBMSUNBVElPTnwx"},
        {"name": "webhook", "type": "webhook", "url": urls["webhook"], "secret": SECRET},
    ]  # fmt: skip


async def _wait_delivered(
    client: aiohttp.ClientSession, url: str, expected: int, timeout: float = 10.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        async with client.get(url) as resp:
            deliveries: list[dict[str, Any]] = await resp.json()
        done = [d for d in deliveries if d["status"] != "pending"]
        if len(done) >= expected or time.monotonic() > deadline:
            return deliveries
        await asyncio.sleep(0.05)


def _table(deliveries: list[dict[str, Any]], receivers: dict[str, Receiver]) -> list[str]:
    lines = [f"{'target':10} {'status':10} {'attempts':>8} {'latency':>9}  received"]
    for d in deliveries:
        latency = "-"
        if d["delivered_at"]:
            start = d["created_at"]
            ms = _ms(d["delivered_at"]) - _ms(start)
            latency = f"{ms:.0f} ms"
        got = receivers[d["forwarder"]].accepted
        seen = ", ".join(f"{r.method} {r.path.split('?')[0]}" for r in got) or "-"
        lines.append(
            f"{d['forwarder']:10} {d['status']:10} {d['attempts']:>8} {latency:>9}  {seen}"
        )
    return lines


def _body_text(body: bytes) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body.decode("utf-8", errors="replace") or "(empty body)"


def _bodies(receivers: dict[str, Receiver]) -> list[str]:
    """What each target received: every request's method, path and body."""
    lines = ["", "what each target received:"]
    for name, receiver in sorted(receivers.items()):
        for got in receiver.accepted:
            lines += ["", f"{name}: {got.method} {got.path}"]
            lines.append(textwrap.indent(_body_text(got.body), "  "))
    return lines


def _ms(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000


async def run_demo(out: TextIO) -> int:
    """Run the demo and print one line per target, then the request bodies each target
    received; 0 when every target got the event."""
    receivers: dict[str, Receiver] = {
        "grafana": GrafanaReceiver(),
        "sentry": SentryReceiver(),
        "bugsnag": BugsnagReceiver(),
        "newrelic": NewRelicReceiver(),
        "webhook": WebhookReceiver(SECRET),
    }
    urls = {name: await r.start() for name, r in receivers.items()}
    urls["webhook"] = receivers["webhook"].url + "/hook"
    with tempfile.TemporaryDirectory(prefix="relay-demo-") as tmp:
        settings = build_settings(
            {
                "storage": {"url": f"sqlite:///{Path(tmp) / 'demo.db'}"},
                "tokens": [{"name": "demo", "token": TOKEN, "scopes": ["admin"]}],
                "forwarders": _forwarders(urls),
                "delivery": {"poll_interval": "1s"},
                # The stand-in targets listen on loopback, which the SSRF guard refuses.
                "security": {"allow_networks": ["127.0.0.0/8"]},
            }
        )
        runner = web.AppRunner(create_app(settings), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with aiohttp.ClientSession(headers=headers) as client:
                path = "/components/demo-api/deployments"
                async with client.post(base + path, json=SAMPLE) as resp:
                    created = await resp.json()
                out.write(f"relay at {base} recorded deployment {created['id']} of demo-api "
                          f"{SAMPLE['version']} to {SAMPLE['stage']}\n\n")  # fmt: skip
                deliveries = await _wait_delivered(
                    client, f"{base}{path}/{created['id']}/deliveries", len(receivers)
                )
        finally:
            await runner.cleanup()
            for r in receivers.values():
                await r.stop()
    out.write("\n".join(_table(deliveries, receivers) + _bodies(receivers)) + "\n")
    ok = all(d["status"] == "delivered" for d in deliveries) and len(deliveries) == len(receivers)
    out.write("\nevery target got the deployment\n" if ok else "\nsome targets did not\n")
    return 0 if ok else 1


def main(out: TextIO) -> int:
    """Entry of `relay demo`."""
    configure("warning", "console")
    return asyncio.run(run_demo(out))
