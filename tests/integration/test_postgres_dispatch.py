"""Two delivery engines (as two relay instances) on one PostgreSQL database, sending to
local Standard Webhooks receivers: circuit state and leases hold across instances."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest

from relay.delivery.deliveries import DeliveryService
from relay.delivery.http import AiohttpTransport
from relay.records.service import RecordService, planner_for
from relay.settings import Settings, build_settings
from relay.standins.base import Fault
from relay.standins.webhook import WebhookReceiver
from relay.store.postgres.store import PostgresStore
from relay.worker import build_dispatcher
from tests.delivery_support import ADMIN, FAST_DELIVERY, SECRET, eventually, webhook
from tests.support import ALLOW_LOOPBACK, TOKENS

pytestmark = pytest.mark.slow

StartReceiver = Callable[..., Awaitable[WebhookReceiver]]


@pytest.fixture
async def receiver() -> AsyncIterator[StartReceiver]:
    """Start Standard Webhooks receivers with canned faults; all stop afterwards."""
    started: list[WebhookReceiver] = []

    async def start(*faults: Fault) -> WebhookReceiver:
        recv = WebhookReceiver(SECRET)
        recv.faults.extend(faults)
        await recv.start()
        started.append(recv)
        return recv

    yield start
    for recv in started:
        await recv.stop()


def pg_settings(url: str, forwarders: list[dict[str, Any]], **delivery: Any) -> Settings:
    """Settings of one instance on the PostgreSQL `url`."""
    return build_settings(
        {
            "storage": {"url": url, "pool_max": 4},
            "tokens": TOKENS,
            "logging": {"format": "json"},
            "delivery": {**FAST_DELIVERY, **delivery},
            "forwarders": forwarders,
            "security": ALLOW_LOOPBACK,
        }
    )


@asynccontextmanager
async def instance(settings: Settings) -> AsyncIterator[tuple[RecordService, DeliveryService]]:
    """One instance's store, dispatcher (woken by the others' commits) and services."""
    store = PostgresStore(settings.storage.url, pool_max=settings.storage.pool_max)
    await store.open()
    transport = AiohttpTransport(allow_networks=settings.security.networks())
    dispatcher = build_dispatcher(settings, store, transport)
    store.add_due_listener(dispatcher.wake)
    records = RecordService(
        store, planner_for(settings.forwarders), on_recorded=lambda _: dispatcher.wake()
    )
    await dispatcher.start()
    try:
        yield records, DeliveryService(store, dispatcher)
    finally:
        await dispatcher.stop(settings.delivery.shutdown_grace)
        await transport.close()
        await store.close()


async def _record(records: RecordService, version: str) -> str:
    result = await records.record("deployment", "api", {"version": version}, ADMIN)
    record_id: str = result.answer.body["id"]
    return record_id


async def test_a_circuit_opened_by_one_instance_holds_on_the_other(
    pg_url: str, receiver: StartReceiver
) -> None:
    """Failures seen by instance A open the circuit for B too: B spends no attempt on the
    target until the cooldown ends."""
    recv = await receiver(*[Fault(503, {"error": "down"})] * 50)
    hook = webhook("hook", recv.endpoint, concurrency=1, retry={"schedule": ["0.1s"] * 20})
    settings = pg_settings(pg_url, [hook], circuit_threshold=2, circuit_cooldown="60s")
    async with instance(settings) as (records_a, deliveries_a):
        for i in range(3):
            await _record(records_a, f"1.0.{i}")

        async def open_on(deliveries: DeliveryService) -> bool:
            (info,) = await deliveries.forwarders()
            return info.state == "circuit-open"

        await eventually(lambda: open_on(deliveries_a), what="circuit open on A")
        async with instance(settings) as (records_b, deliveries_b):
            await _record(records_b, "2.0.0")
            await eventually(lambda: open_on(deliveries_b), what="circuit open on B")
            await asyncio.sleep(0.5)  # retries fall due every 0.1 s: none may be attempted
    assert len(recv.received) == 2


async def test_a_send_longer_than_the_lease_is_not_taken_over(
    pg_url: str, receiver: StartReceiver
) -> None:
    """A's lease is renewed while its slow send is in flight, so B (claiming all the while)
    never sends the same delivery a second time."""
    recv = await receiver(Fault(200, {"ok": True}, delay=1.5))
    hook = webhook("hook", recv.endpoint, timeout="5s")
    settings = pg_settings(pg_url, [hook], lease="0.3s", poll_interval="0.05s")
    async with AsyncExitStack() as stack:
        records_a, deliveries_a = await stack.enter_async_context(instance(settings))
        dep = await _record(records_a, "1.0.0")
        sending = deliveries_a.dispatcher.targets["hook"]
        await eventually(lambda: sending.in_flight == 1, what="A's send in flight")
        await stack.enter_async_context(instance(settings))

        async def delivered() -> bool:
            found = await deliveries_a.of_deployment(dep)
            return found[0].status == "delivered"

        await eventually(delivered, timeout=10, what="slow delivery done")
        await eventually(lambda: sending.in_flight == 0, timeout=5, what="A's send over")
        (found,) = await deliveries_a.of_deployment(dep)
        assert found.attempts == 1
    assert len(recv.received) == 1
