"""Secrets never leak: a whole session with every forwarder type, faults and check-config,
every log line, API answer and command output searched for every secret used."""

from __future__ import annotations

import base64
import io
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from pytest_aiohttp import AiohttpClient

from relay.app import create_app
from relay.cli import main
from relay.demo import SAMPLE
from relay.logging import configure
from relay.settings import load_settings
from relay.standins.base import Fault, Receiver
from relay.standins.bugsnag import BugsnagReceiver
from relay.standins.grafana import GrafanaReceiver
from relay.standins.newrelic import NewRelicReceiver
from relay.standins.sentry import SentryReceiver
from relay.standins.webhook import WebhookReceiver
from tests.acceptance.server import clean_env, free_port, relay_command
from tests.delivery_support import eventually

ADMIN = "adm1n-T0ken-sekrit-4f9e"
CI = "c1-T0ken-sekrit-8a2b"
WEBHOOK_KEY = b"wh-signing-sekrit-bytes-7c3d5e"
# Each secret comes from the environment through ${VAR} in the file.
ENV = {
    "T_ADMIN": ADMIN,
    "T_CI": CI,
    "T_GRAFANA": "glsa_grafana-sekrit-1d2e3f",
    "T_SENTRY": "sntrys_sentry-sekrit-5a6b7c",
    "T_SENTRY_WRONG": "sntrys_wrong-sekrit-9z8y7x",
    "T_BUGSNAG": "5ec0e75ec0e75ec0e75ec0e75ec0e7ab",
    "T_NEWRELIC": "NRAK-NEWRELICSEKRIT0123456",
    "T_WEBHOOK": "whsec_" + base64.b64encode(WEBHOOK_KEY).decode(),
    "T_HEADER": "hdr-auth-sekrit-0q1w2e",
}
SECRETS = [*ENV.values(), base64.b64encode(WEBHOOK_KEY).decode(), WEBHOOK_KEY.decode()]
FAST = 'retry = { schedule = ["0.1s", "0.1s"], jitter = 0 }\ntimeout = "2s"'


def config_text(db: Path, urls: dict[str, str], down: str) -> str:
    """A relay.toml with all five forwarder types, a wrong Sentry token and a dead target."""
    return f"""
[storage]
url = "sqlite:///{db}"
[logging]
level = "debug"
format = "json"
[delivery]
circuit_cooldown = "0.2s"
[security]
allow_networks = ["127.0.0.0/8", "::1/128"]
[[tokens]]
name = "root"
token = "${{T_ADMIN}}"
scopes = ["admin"]
[[tokens]]
name = "ci"
token = "${{T_CI}}"
[[forwarders]]
name = "grafana"
type = "grafana"
url = "{urls["grafana"]}"
token = "${{T_GRAFANA}}"
{FAST}
[[forwarders]]
name = "sentry"
type = "sentry"
url = "{urls["sentry"]}"
token = "${{T_SENTRY}}"
org = "acme"
projects = ["web"]
{FAST}
[[forwarders]]
name = "sentry-wrong"
type = "sentry"
url = "{urls["sentry"]}"
token = "${{T_SENTRY_WRONG}}"
org = "acme"
projects = ["web"]
{FAST}
[[forwarders]]
name = "bugsnag"
type = "bugsnag"
url = "{urls["bugsnag"]}/"
api_key = "${{T_BUGSNAG}}"
{FAST}
[[forwarders]]
name = "newrelic"
type = "newrelic"
url = "{urls["newrelic"]}"
api_key = "${{T_NEWRELIC}}"
entity_guid = "MTIzNDU2fEFQTXxBUFBMSUNBVElPTnwx"
{FAST}
[[forwarders]]
name = "webhook"
type = "webhook"
url = "{urls["webhook"]}"
secret = "${{T_WEBHOOK}}"
headers = {{ Authorization = "Bearer ${{T_HEADER}}" }}
{FAST}
[[forwarders]]
name = "down"
type = "webhook"
url = "{down}"
secret = "${{T_WEBHOOK}}"
headers = {{ X-Api-Key = "${{T_HEADER}}" }}
{FAST}
"""


@pytest.fixture
async def receivers() -> AsyncIterator[dict[str, Receiver]]:
    """Local stand-ins of the five targets (New Relic fails once with a 500)."""
    started: dict[str, Receiver] = {
        "grafana": GrafanaReceiver(token=ENV["T_GRAFANA"]),
        "sentry": SentryReceiver(token=ENV["T_SENTRY"]),
        "bugsnag": BugsnagReceiver(),
        "newrelic": NewRelicReceiver(api_key=ENV["T_NEWRELIC"]),
        "webhook": WebhookReceiver(ENV["T_WEBHOOK"]),
    }
    started["newrelic"].faults.append(Fault(500, {"error": "busy"}))
    for receiver in started.values():
        await receiver.start()
    yield started
    for receiver in started.values():
        await receiver.stop()


def leaked(text: str) -> list[str]:
    """The secrets found in `text`."""
    return [s for s in SECRETS if s in text]


async def test_no_secret_in_logs_answers_or_check_config(
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    receivers: dict[str, Receiver],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Deliveries to all five targets, failures and check-config: no secret in any log line,
    API answer or output, while every secret did reach its target."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    urls = {name: r.url for name, r in receivers.items()}
    urls["webhook"] = receivers["webhook"].url + "/hook"
    path = tmp_path / "relay.toml"
    down = f"http://127.0.0.1:{free_port()}/hook"
    path.write_text(config_text(tmp_path / "relay.db", urls, down), encoding="utf-8")
    logs = io.StringIO()
    configure("debug", "json", logs)
    client = await aiohttp_client(create_app(load_settings(path)))
    admin = {"Authorization": f"Bearer {ADMIN}"}

    created = await client.post(
        "/components/web/deployments", json=SAMPLE, headers={"Authorization": f"Bearer {CI}"}
    )
    assert created.status == 201, await created.text()
    deliveries_path = f"/components/web/deployments/{(await created.json())['id']}/deliveries"
    bad = await client.post("/components/web/deployments", json=SAMPLE, headers=admin | {
        "Authorization": f"Bearer {ENV['T_SENTRY']}"
    })  # fmt: skip
    assert bad.status == 401

    async def settled() -> list[dict[str, Any]] | None:
        answer = await (await client.get(deliveries_path, headers=admin)).json()
        return answer if all(d["status"] != "pending" for d in answer) else None

    deliveries = {d["forwarder"]: d for d in await eventually(settled, what="settled")}
    assert {n: d["status"] for n, d in deliveries.items()} == {
        "grafana": "delivered",
        "sentry": "delivered",
        "sentry-wrong": "dead",
        "bugsnag": "delivered",
        "newrelic": "delivered",
        "webhook": "delivered",
        "down": "dead",
    }
    answers = [json.dumps(list(deliveries.values()))]
    for url in ("/forwarders", "/openapi.json", "/metrics", "/deliveries?status=dead"):
        response = await client.get(url, headers=admin)
        assert response.status == 200, url
        answers.append(await response.text())
    await client.close()

    assert main(["check-config", str(path)]) == 0
    checked = capsys.readouterr()
    assert "token: ***" in checked.out and "api_key: ***" in checked.out
    sub = subprocess.run(
        [*relay_command(), "check-config", str(path)],
        env=clean_env(**ENV),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    structlog.get_logger("test").error("secrets_session_done")  # written at once, flushing
    await eventually(lambda: "secrets_session_done" in logs.getvalue() or None, what="logs")

    log_text = logs.getvalue()
    events = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events].count("delivery_dead") == 2  # the failures were logged
    everything = "\n".join([log_text, *answers, checked.out, checked.err, sub.stdout, sub.stderr])
    assert leaked(everything) == []
    # The secrets were really used: each target got its own credential.
    assert receivers["webhook"].accepted and receivers["grafana"].accepted
