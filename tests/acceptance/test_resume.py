"""Recovery after a target's outage: an operator's resume (API and CLI) closes the circuit
and sends what waits at once, without sending anything twice; unattended, the breaker's
probe interval is capped by delivery.circuit_max_cooldown."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from relay.app import create_app
from relay.standins.base import Fault
from relay.standins.webhook import WebhookReceiver
from tests.acceptance.api import assert_error, bearer, create
from tests.acceptance.server import run_relay, write_config
from tests.delivery_support import SECRET, engine_settings, eventually, webhook
from tests.support import ADMIN_TOKEN, READ_TOKEN, TOKENS

Client = TestClient[Any, Any]
StartRelay = Callable[..., Awaitable[Client]]
# The target is down for good until the test says otherwise.
DOWN = [Fault(503, {"error": "down"})] * 10_000
# A failed delivery would wait an hour on its own: only a resume brings it forward.
SLOW_RETRY: dict[str, Any] = {"schedule": ["1h", "1h"], "jitter": 0}
# Once open, the circuit would stay open for an hour: only a resume closes it.
HELD_OPEN: dict[str, Any] = {
    "circuit_threshold": 2,
    "circuit_cooldown": "1h",
    "circuit_max_cooldown": "1h",
}


@pytest.fixture
async def target() -> AsyncIterator[WebhookReceiver]:
    """A webhook receiver that answers 503 until its faults are cleared."""
    recv = WebhookReceiver(SECRET, path="/hook")
    recv.faults.extend(DOWN)
    await recv.start()
    yield recv
    await recv.stop()


@pytest.fixture
def relay(aiohttp_client: AiohttpClient, tmp_path: Path) -> StartRelay:
    """Start a relay on a SQLite file with one webhook forwarder `hook`."""

    async def start(forwarder: dict[str, Any], delivery: dict[str, Any]) -> Client:
        settings = engine_settings(tmp_path / "relay.db", [forwarder], delivery=delivery)
        return await aiohttp_client(create_app(settings))

    return start


async def open_circuit(client: Client, target: WebhookReceiver, events: int) -> list[str]:
    """Record `events` deployments while the target is down; wait for the circuit to open."""
    created = [await create(client, "api", {"version": f"1.0.{n}"}) for n in range(events)]

    async def circuit_open() -> bool:
        response = await client.get("/forwarders", headers=bearer(READ_TOKEN))
        (info,) = await response.json()
        return bool(info["state"] == "circuit-open")

    await eventually(circuit_open, what="the circuit to open")
    return created


async def all_delivered(target: WebhookReceiver, count: int, timeout: float) -> list[str]:
    """Wait until the target has accepted `count` events; their versions, in order."""
    await eventually(lambda: len(target.events) >= count, timeout=timeout, what="the drain")
    return [e.payload["data"]["version"] for e in target.events]


async def test_resume_closes_the_circuit_and_sends_every_waiting_delivery_once(
    relay: StartRelay, target: WebhookReceiver
) -> None:
    """Target down, circuit open, target back: POST /forwarders/hook/resume (admin) sends
    every pending delivery within seconds, each exactly once."""
    client = await relay(
        webhook("hook", target.endpoint, retry=SLOW_RETRY, concurrency=1), HELD_OPEN
    )
    await open_circuit(client, target, 6)
    target.faults.clear()  # the target is back; relay does not know yet
    await asyncio.sleep(0.5)
    assert target.events == []

    await assert_error(
        await client.post("/forwarders/hook/resume", headers=bearer(READ_TOKEN)), 403
    )
    await assert_error(
        await client.post("/forwarders/nobody/resume", headers=bearer(ADMIN_TOKEN)), 404
    )
    response = await client.post("/forwarders/hook/resume", headers=bearer(ADMIN_TOKEN))
    assert response.status == 200, await response.text()
    # The two failed tries had been put off for an hour; the other four were due anyway.
    assert await response.json() == {"forwarder": "hook", "circuit": "closed", "due_now": 2}
    versions = await all_delivered(target, 6, timeout=5)
    assert sorted(versions) == [f"1.0.{n}" for n in range(6)]  # none twice, none lost
    await asyncio.sleep(0.3)
    assert len(target.events) == 6
    (info,) = await (await client.get("/forwarders", headers=bearer(READ_TOKEN))).json()
    assert info["state"] == "active" and info["counts"]["pending"] == 0


async def test_cli_resume_reaches_a_running_relay_through_the_database(
    relay: StartRelay, target: WebhookReceiver, tmp_path: Path
) -> None:
    """`relay forwarders resume hook` on the same database closes the running relay's
    circuit and its deliveries go out; an unknown forwarder is an error."""
    forwarder = webhook("hook", target.endpoint, retry=SLOW_RETRY, concurrency=1)
    client = await relay(forwarder, HELD_OPEN)
    await open_circuit(client, target, 3)
    target.faults.clear()
    config = write_config(tmp_path / "relay.toml", tmp_path / "relay.db", TOKENS)
    with config.open("a", encoding="utf-8") as out:
        out.write('[security]\nallow_networks = ["127.0.0.0/8"]\n[[forwarders]]\n')
        for key in ("name", "type", "url", "secret"):
            out.write(f"{key} = {json.dumps(forwarder[key])}\n")
        out.write('retry = { schedule = ["1h", "1h"] }\n')

    unknown = await asyncio.to_thread(
        run_relay, "forwarders", "resume", "nobody", "--config", str(config), cwd=tmp_path
    )
    assert unknown.returncode == 1 and "no forwarder named 'nobody'" in unknown.stderr
    done = await asyncio.to_thread(
        run_relay, "forwarders", "resume", "hook", "--config", str(config), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "resumed 'hook'" in done.stdout and "2 waiting deliveries due now" in done.stdout
    versions = await all_delivered(target, 3, timeout=5)
    assert sorted(versions) == ["1.0.0", "1.0.1", "1.0.2"]


async def test_unattended_relay_probes_within_the_cooldown_cap(
    relay: StartRelay, target: WebhookReceiver
) -> None:
    """With no operator, a target that comes back after a long outage is probed, and the
    backlog sent, within circuit_max_cooldown, however often the probes failed before."""
    fast_retry = {"schedule": ["0.05s"] * 50, "jitter": 0}
    client = await relay(
        webhook("hook", target.endpoint, retry=fast_retry, concurrency=1),
        {"circuit_threshold": 1, "circuit_cooldown": "0.05s", "circuit_max_cooldown": "0.3s"},
    )
    await open_circuit(client, target, 2)
    # Doubling with no cap, the probes would come at 0.05, 0.15, 0.35, 0.75, 1.55, 3.15,
    # 6.35 s: a recovery at 3.5 s would wait until 6.35 s.
    await asyncio.sleep(3.5)
    target.faults.clear()
    back = time.monotonic()
    await all_delivered(target, 2, timeout=5)
    assert time.monotonic() - back < 1.5
