"""Several `relay serve` processes on one PostgreSQL database, as users run them behind a
load balancer: every event reaches every forwarder exactly once and in order, a killed
instance's deliveries are finished by the others, and a commit on one instance wakes the
others at once."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from relay.standins.webhook import WebhookReceiver
from tests.acceptance.instance import Instance
from tests.acceptance.pg_support import BlackHole, call, write_config
from tests.delivery_support import SECRET, eventually

pytestmark = pytest.mark.slow

STEPS = ("queued", "building", "starting", "success")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for talking to the subprocesses (many connections at once)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        yield session


@pytest.fixture
async def receivers() -> AsyncIterator[list[WebhookReceiver]]:
    """Five Standard Webhooks receivers (one per forwarder)."""
    started = [WebhookReceiver(SECRET) for _ in range(5)]
    for recv in started:
        await recv.start()
    yield started
    for recv in started:
        await recv.stop()


@pytest.fixture
async def instances() -> AsyncIterator[list[Instance]]:
    """Every instance a test starts; all stopped (or already killed) afterwards."""
    made: list[Instance] = []
    yield made
    await asyncio.gather(*(i.stop() for i in made))


async def _lifecycle(http: aiohttp.ClientSession, urls: Any, component: str) -> str:
    """One deployment through queued → building → starting → success, each step sent to
    the next instance in turn; its id."""
    status, body = await call(
        http,
        "POST",
        f"{next(urls)}/components/{component}/deployments",
        {"version": "1.0.0", "stage": "production", "status": "queued"},
    )
    assert status == 201, body
    dep: str = body["id"]
    for step in STEPS[1:]:
        status, body = await call(
            http,
            "PATCH",
            f"{next(urls)}/components/{component}/deployments/{dep}",
            {"status": step},
        )
        assert status == 200, body
    return dep


async def test_three_instances_deliver_everything_once_and_in_order(
    pg_url: str,
    tmp_path: Path,
    http: aiohttp.ClientSession,
    receivers: list[WebhookReceiver],
    instances: list[Instance],
) -> None:
    """1,000 events sent round-robin to three instances reach each of five forwarders
    exactly once, every deployment's events in the order they happened, and every
    instance takes part in delivering."""
    targets = {f"hook{i}": recv.endpoint for i, recv in enumerate(receivers)}
    config = write_config(tmp_path / "relay.toml", pg_url, targets, poll_interval="1s")
    instances += [Instance(config, tmp_path / f"relay-{n}.log") for n in range(3)]
    await asyncio.gather(*(i.start(http) for i in instances))

    urls = itertools.cycle([i.url for i in instances])
    gate = asyncio.Semaphore(24)

    async def one(n: int) -> str:
        async with gate:
            return await _lifecycle(http, urls, f"svc-{n % 10}")

    deployments = await asyncio.gather(*(one(n) for n in range(250)))  # 4 events each

    def all_received() -> bool:
        return all(len(recv.events) >= 1000 for recv in receivers)

    await eventually(all_received, timeout=90, what="1,000 events at every receiver")
    await asyncio.sleep(0.5)  # a duplicate, if any, would arrive now
    for recv in receivers:
        assert recv.duplicates == [] and len(recv.events) == 1000
        assert len({e.msg_id for e in recv.events}) == 1000
        seen: dict[str, list[str]] = {}
        for event in recv.events:
            seen.setdefault(event.payload["data"]["id"], []).append(event.payload["data"]["status"])
        assert set(seen) == set(deployments)
        assert all(tuple(statuses) == STEPS for statuses in seen.values())
    await asyncio.gather(*(i.stop() for i in instances))  # flushes their logs
    for instance in instances:
        assert instance.log_events("delivery_succeeded"), instance.output()


async def test_a_killed_instances_deliveries_are_finished_by_the_others(
    pg_url: str,
    tmp_path: Path,
    http: aiohttp.ClientSession,
    receivers: list[WebhookReceiver],
    instances: list[Instance],
) -> None:
    """kill -9 of an instance holding claims: once its lease runs out the other instances
    deliver them; nothing is lost, and a delivery sent twice keeps its webhook-id."""
    hole = BlackHole()
    await hole.start()
    lease = 2.0
    real = {"hook0": receivers[0].endpoint, "hook1": receivers[1].endpoint}
    hung = dict.fromkeys(real, hole.url)
    common = {"lease": f"{lease}s", "poll_interval": "0.5s"}
    doomed_config = write_config(tmp_path / "doomed.toml", pg_url, hung, timeout="60s", **common)
    config = write_config(tmp_path / "relay.toml", pg_url, real, **common)
    doomed = Instance(doomed_config, tmp_path / "doomed.log")
    instances.append(doomed)
    try:
        await doomed.start(http)
        posted = []
        for n in range(12):
            status, body = await call(
                http, "POST", f"{doomed.url}/components/api/deployments", {"version": f"1.0.{n}"}
            )
            assert status == 201, body
            posted.append(body["id"])
        await eventually(lambda: hole.requests >= 2, what="the doomed instance is sending")
        conn = await asyncpg.connect(pg_url)
        try:
            held = {
                r[0]
                for r in await conn.fetch("SELECT id FROM deliveries WHERE locked_by IS NOT NULL")
            }
        finally:
            await conn.close()
        assert held
        await doomed.kill()
        killed = time.monotonic()
        others = [Instance(config, tmp_path / f"relay-{n}.log") for n in range(2)]
        instances.extend(others)
        await asyncio.gather(*(i.start(http) for i in others))

        def delivered() -> bool:
            return all(len(receivers[i].events) >= len(posted) for i in (0, 1))

        await eventually(delivered, timeout=lease + 15, what="every event delivered")
        assert time.monotonic() - killed < lease + 10
    finally:
        await hole.stop()
    for recv in receivers[:2]:
        ids: dict[str, set[str]] = {}
        for request in recv.accepted:
            ids.setdefault(request.json()["data"]["id"], set()).add(request.headers["webhook-id"])
        assert set(ids) == set(posted)
        assert all(len(found) == 1 for found in ids.values())

    async def all_recorded() -> list[asyncpg.Record] | None:
        # A receiver has the request a moment before the sender's completion commits.
        conn = await asyncpg.connect(pg_url)
        try:
            rows = await conn.fetch("SELECT id, status, attempts FROM deliveries")
        finally:
            await conn.close()
        done = {r["status"] for r in rows} == {"delivered"} and len(rows) == 2 * len(posted)
        return rows if done else None

    rows = await eventually(all_recorded, timeout=10, what="every delivery recorded")
    assert all(r["attempts"] == 1 for r in rows if r["id"] in held)  # the kill spent none


async def test_an_event_on_one_instance_is_delivered_by_another_within_100ms(
    pg_url: str,
    tmp_path: Path,
    http: aiohttp.ClientSession,
    receivers: list[WebhookReceiver],
    instances: list[Instance],
) -> None:
    """With A's dispatcher off and B polling only every 30 s, B delivers what A ingested
    within 100 ms: A's commit NOTIFYs, B LISTENs."""
    recv = receivers[0]
    config = write_config(
        tmp_path / "relay.toml", pg_url, {"hook": recv.endpoint}, poll_interval="30s"
    )
    a = Instance(config, tmp_path / "a.log", dispatch=False)
    b = Instance(config, tmp_path / "b.log")
    instances += [a, b]
    await asyncio.gather(a.start(http), b.start(http))
    latencies = []
    for n in range(6):
        before = len(recv.events)
        status, body = await call(
            http, "POST", f"{a.url}/components/api/deployments", {"version": f"1.0.{n}"}
        )
        assert status == 201, body
        acked = time.monotonic()
        while len(recv.events) == before and time.monotonic() - acked < 5:
            await asyncio.sleep(0.001)
        latencies.append(time.monotonic() - acked)
    # The first one warms B's connections up; every later one must be quick.
    assert max(latencies[1:]) < 0.1, latencies
    await asyncio.gather(a.stop(), b.stop())  # flushes their logs
    assert [len(i.log_events("delivery_succeeded")) for i in (a, b)] == [0, 6]
