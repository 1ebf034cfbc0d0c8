"""`kill -9` loses nothing: a `relay serve` process acknowledges events while its webhook
target is down, is killed without warning, restarts on the same SQLite file, and every
acknowledged event reaches the target once it comes up (at-least-once, one webhook-id
per delivery)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from relay.standins.webhook import WebhookReceiver
from tests.acceptance.instance import Instance, webhook_config
from tests.delivery_support import SECRET, eventually, free_port
from tests.support import CI_TOKEN

pytestmark = pytest.mark.slow

EVENTS = 20

DELIVERY = """
poll_interval = "1s"
circuit_threshold = 3
circuit_cooldown = "0.3s"
shutdown_grace = "1s"
"""


async def delivery_of(
    http: aiohttp.ClientSession, server: Instance, dep: str, status: str, *, tried: bool = False
) -> dict[str, Any] | None:
    """The single delivery of a deployment if it has `status` (and attempts), else None."""
    async with http.get(
        f"{server.url}/components/api/deployments/{dep}/deliveries",
        headers={"Authorization": f"Bearer {CI_TOKEN}"},
    ) as response:
        assert response.status == 200, await response.text()
        (found,) = await response.json()
    if found["status"] != status or (tried and not found["attempts"]):
        return None
    result: dict[str, Any] = found
    return result


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for talking to the subprocess."""
    async with aiohttp.ClientSession() as session:
        yield session


async def test_kill_9_loses_no_acknowledged_event(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """Every event acknowledged before a kill -9 is delivered after the restart."""
    hook_port, port = free_port(), free_port()
    schedule = ", ".join(['"0.3s"'] * 60)
    config = tmp_path / "relay.toml"
    config.write_text(
        webhook_config(
            tmp_path / "data" / "relay.db",
            hook_port,
            delivery=DELIVERY,
            forwarder=f'timeout = "1s"\nretry = {{ schedule = [{schedule}], jitter = 0 }}',
        )
    )
    server = Instance(config, tmp_path / "relay.log", port=port)
    receiver = WebhookReceiver(SECRET)
    headers = {"Authorization": f"Bearer {CI_TOKEN}"}
    try:
        await server.start(http, ready=False)
        posted: list[str] = []
        for i in range(EVENTS):
            body = {"version": f"1.0.{i}", "stage": "production", "result": "success"}
            async with http.post(
                f"{server.url}/components/api/deployments", json=body, headers=headers
            ) as response:
                assert response.status == 201, await response.text()
                posted.append((await response.json())["id"])
        # Some attempts failed (target down) and were rescheduled in the database.
        await eventually(lambda: delivery_of(http, server, posted[0], "pending", tried=True))
        await server.kill()  # no shutdown code runs: leases and retries stay as they are
        assert receiver.received == []

        started = time.monotonic()
        await server.start(http, ready=False)
        await receiver.start(port=hook_port)

        def delivered() -> set[str]:
            ids = {e.payload["data"]["id"] for e in receiver.events}
            return ids if ids >= set(posted) else set()

        try:
            await eventually(delivered, timeout=20, what="every event delivered")
        except AssertionError:
            raise AssertionError(server.output()) from None
        assert time.monotonic() - started < 20

        # Duplicates only ever reuse the delivery's webhook-id.
        ids_by_deployment: dict[str, set[str]] = {}
        for request in receiver.accepted:
            payload: dict[str, Any] = request.json()
            ids_by_deployment.setdefault(payload["data"]["id"], set()).add(
                request.headers["webhook-id"]
            )
        assert set(ids_by_deployment) == set(posted)
        assert all(len(ids) == 1 for ids in ids_by_deployment.values()), ids_by_deployment
        assert len(receiver.events) == EVENTS
        assert set(receiver.duplicates) <= {e.msg_id for e in receiver.events}

        # The API agrees: one delivered delivery per event, with that same id.
        for dep in posted:
            found = await eventually(lambda dep=dep: delivery_of(http, server, dep, "delivered"))
            assert ids_by_deployment[dep] == {found["id"]}
    finally:
        await server.stop()
        await receiver.stop()
