"""The delivery engine end to end below the API: a real SQLite file, real HTTP to local
Standard Webhooks receivers injecting faults (timeouts, 429, 5xx, 4xx, 410, refusals)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from relay.standins.base import Fault
from relay.standins.webhook import WebhookReceiver
from relay.store.base import NewDelivery, NewEvent
from relay.store.sqlite.lifecycle import insert_event
from relay.timeutil import format_db, parse_db, utcnow
from tests.delivery_support import (
    ADMIN,
    SECRET,
    Engine,
    engine_settings,
    eventually,
    free_port,
    running_engine,
    webhook,
)

StartReceiver = Callable[..., Awaitable[WebhookReceiver]]


@pytest.fixture
async def receiver() -> AsyncIterator[StartReceiver]:
    """Start Standard Webhooks receivers (optionally on a given port); all stop afterwards."""
    started: list[WebhookReceiver] = []

    async def start(*faults: Fault, port: int = 0) -> WebhookReceiver:
        recv = WebhookReceiver(SECRET)
        recv.faults.extend(faults)
        await recv.start(port=port)
        started.append(recv)
        return recv

    yield start
    for recv in started:
        await recv.stop()


def versions(recv: WebhookReceiver) -> list[str]:
    """The deployment version of each event the receiver accepted, in arrival order."""
    return [e.payload["data"]["version"] for e in recv.events]


async def test_two_503_then_delivered_on_the_third_attempt(
    db: Path, receiver: StartReceiver
) -> None:
    """A target failing twice with 503 then accepting: delivered, three attempts recorded."""
    recv = await receiver(Fault(503, {"error": "busy"}), Fault(503, {"error": "busy"}))
    settings = engine_settings(db, [webhook("hook", recv.endpoint)])
    async with running_engine(settings, db) as engine:
        dep = await engine.record()
        found = await engine.settled(dep, "hook", "delivered")
    log = found.attempt_log or []
    assert [(a.number, a.outcome, a.status_code) for a in log] == [
        (1, "retry", 503),
        (2, "retry", 503),
        (3, "delivered", 200),
    ]
    assert log[0].error == "webhook answered HTTP 503: busy"
    assert found.attempts == 3 and found.last_error is None
    # One idempotency key for every try: the receiver sees one webhook-id three times.
    assert len({r.headers["webhook-id"] for r in recv.received}) == 1
    assert len(recv.received) == 3 and len(recv.events) == 1


async def test_429_retry_after_delays_the_next_attempt(db: Path, receiver: StartReceiver) -> None:
    """429 with `Retry-After: 2`: the next attempt is not made before 2 s have passed."""
    recv = await receiver(Fault(429, {"error": "rate limited"}, headers={"Retry-After": "2"}))
    settings = engine_settings(db, [webhook("hook", recv.endpoint)])
    async with running_engine(settings, db) as engine:
        dep = await engine.record()

        async def retry_scheduled() -> Any:
            (d,) = await engine.of(dep)
            return d if d.attempts == 1 else None

        pending = await eventually(retry_scheduled)
        (first,) = pending.attempt_log or []
        assert (first.outcome, first.status_code) == ("retry", 429)
        assert pending.next_attempt_at is not None
        wait = (pending.next_attempt_at - first.started_at).total_seconds()
        assert 2.0 <= wait < 2.1  # the target's wish, not the 0.2 s schedule
        found = await engine.settled(dep, "hook", "delivered")
    first, second = found.attempt_log or []
    assert (second.started_at - first.started_at).total_seconds() >= 2.0


async def test_400_is_dead_at_once_with_the_response_excerpt(
    db: Path, receiver: StartReceiver
) -> None:
    """A 4xx answer kills the delivery after one attempt and keeps what the target said."""
    recv = await receiver(Fault(400, {"error": "field 'version' is not a valid semver"}))
    settings = engine_settings(db, [webhook("hook", recv.endpoint)])
    async with running_engine(settings, db) as engine:
        dep = await engine.record()
        found = await engine.settled(dep, "hook", "dead")
        await asyncio.sleep(0.5)  # longer than the retry schedule: nothing more is sent
        (again,) = await engine.of(dep)
    (attempt,) = again.attempt_log or []
    assert (attempt.outcome, attempt.status_code) == ("dead", 400)
    assert attempt.error == "webhook answered HTTP 400: field 'version' is not a valid semver"
    assert attempt.response_excerpt is not None
    assert json.loads(attempt.response_excerpt) == {
        "error": "field 'version' is not a valid semver"
    }
    assert found.last_status_code == 400 and found.next_attempt_at is None
    assert len(recv.received) == 1


async def test_a_hanging_target_times_out_without_delaying_other_forwarders(
    db: Path, receiver: StartReceiver
) -> None:
    """A target that never answers in time gets a timeout and a retry; the other forwarder's
    deliveries complete within a fraction of a second meanwhile."""
    hanging = await receiver(*[Fault(200, {"late": True}, delay=1.0)] * 5)
    healthy = await receiver()
    settings = engine_settings(
        db,
        [
            webhook("slow", hanging.endpoint, timeout="0.3s"),
            webhook("fast", healthy.endpoint),
        ],
    )
    async with running_engine(settings, db) as engine:
        deps = [await engine.record(version=f"1.0.{i}") for i in range(5)]
        fast = [await engine.settled(dep, "fast", "delivered") for dep in deps]
        latencies = [(d.delivered_at - d.created_at).total_seconds() for d in fast]  # type: ignore[operator]
        assert max(latencies) < 0.3, latencies  # all done before the slow one even timed out

        async def timed_out() -> Any:
            found = await engine.search(forwarder="slow")
            return found if all(d.attempts >= 1 for d in found) else None

        slow = await eventually(timed_out)
        for d in slow:
            assert d.status == "pending" and d.next_attempt_at is not None
            assert d.last_error == "webhook did not answer within 0.3s"
        (first,) = [d for d in await engine.of(deps[0]) if d.forwarder == "slow"]
        timeout = (first.attempt_log or [])[0]
        assert timeout.outcome == "retry" and 300 <= timeout.duration_ms < 1000
        # The retries reach the target once it answers again.
        for dep in deps:
            await engine.settled(dep, "slow", "delivered")
    assert sorted(versions(healthy)) == sorted(versions(hanging))


async def test_circuit_opens_and_stops_spending_attempts(db: Path, receiver: StartReceiver) -> None:
    """After N consecutive failures nothing is sent while the circuit is open; after the
    cooldown one probe goes, and its success lets everything through."""
    recv = await receiver(*[Fault(503, {"error": "down"})] * 50)
    settings = engine_settings(
        db,
        [
            webhook(
                "hook", recv.endpoint, concurrency=1, retry={"schedule": ["0.1s"] * 9, "jitter": 0}
            )
        ],
        delivery={"circuit_threshold": 3, "circuit_cooldown": "1s"},
    )
    async with running_engine(settings, db) as engine:
        deps = [await engine.record(version=f"2.0.{i}") for i in range(5)]

        async def circuit_open() -> bool:
            (info,) = await engine.deliveries.forwarders()
            return info.state == "circuit-open"

        await eventually(circuit_open)
        opened = time.monotonic()
        await asyncio.sleep(0.6)  # retries fall due every 0.1 s: none may be attempted
        assert len(recv.received) == 3
        assert sum(d.attempts for d in await engine.search(forwarder="hook")) == 3

        recv.faults.clear()  # the target recovers
        for dep in deps:
            await engine.settled(dep, "hook", "delivered")
        assert time.monotonic() - opened >= 0.9
        (info,) = await engine.deliveries.forwarders()
        assert info.state == "active"
    assert len(recv.received) == 3 + 5  # no attempt wasted while the circuit was open
    assert sorted(versions(recv)) == [f"2.0.{i}" for i in range(5)]


async def test_a_deployments_events_are_received_in_order(
    db: Path, receiver: StartReceiver
) -> None:
    """Many events of one deployment reach a webhook in the order they happened, even when
    the first one has to be retried."""
    recv = await receiver(Fault(503), Fault(503))
    settings = engine_settings(db, [webhook("hook", recv.endpoint)])
    async with running_engine(settings, db) as engine:
        dep = await engine.record(version="v0")
        for n in range(1, 10):
            await _later_event(engine, dep, f"v{n}")
        engine.dispatcher.wake()

        async def all_delivered() -> bool:
            found = await engine.of(dep)
            return len(found) == 10 and all(d.status == "delivered" for d in found)

        await eventually(all_delivered)
    assert versions(recv) == [f"v{n}" for n in range(10)]


async def _later_event(engine: Engine, deployment_id: str, version: str) -> None:
    """Store another event of the deployment with its outbox row (as a lifecycle
    transition would), straight into the database."""
    now = utcnow()
    record = (await engine.of(deployment_id))[0]
    data = {"id": deployment_id, "component": record.component, "version": version}
    event = NewEvent(str(uuid.uuid4()), "deployment.status_changed", now, data)
    delivery = NewDelivery(str(uuid.uuid4()), "hook", now)

    def op(conn: sqlite3.Connection) -> None:
        insert_event(conn, event, deployment_id, "api", [delivery])

    await engine.store.engine.write(op)


async def test_a_refused_connection_is_retried_until_the_target_is_up(
    db: Path, receiver: StartReceiver
) -> None:
    """Nothing listening: the attempt records the network error and the delivery waits."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    settings = engine_settings(
        db, [webhook("hook", url, retry={"schedule": ["0.2s"] * 20, "jitter": 0})]
    )
    async with running_engine(settings, db) as engine:
        dep = await engine.record()

        async def failed_once() -> Any:
            (d,) = await engine.of(dep)
            return d if d.attempts else None

        pending = await eventually(failed_once)
        assert pending.status == "pending"
        assert pending.last_error is not None
        assert pending.last_error.startswith("could not reach webhook")
        recv = await receiver(port=port)
        found = await engine.settled(dep, "hook", "delivered")
    assert found.attempts >= 2 and len(recv.events) == 1


async def test_410_disables_the_forwarder_durably_until_enabled(
    db: Path, receiver: StartReceiver
) -> None:
    """410 Gone: that delivery is dead, the forwarder is disabled across a restart, later
    deliveries wait, and enabling it sends them."""
    recv = await receiver(Fault(410, {"error": "this hook was deleted"}))
    settings = engine_settings(db, [webhook("hook", recv.endpoint)])
    async with running_engine(settings, db) as engine:
        gone = await engine.record(version="1")
        found = await engine.settled(gone, "hook", "dead")
        assert found.last_status_code == 410
        later = await engine.record(version="2")
        await asyncio.sleep(0.3)
    async with running_engine(settings, db) as engine:
        (info,) = await engine.deliveries.forwarders()
        assert info.state == "disabled" and info.disabled_reason is not None
        assert "410" in info.disabled_reason
        await asyncio.sleep(0.3)
        (waiting,) = await engine.of(later)
        assert (waiting.status, waiting.attempts) == ("pending", 0)
        await engine.deliveries.enable("hook", ADMIN)
        await engine.settled(later, "hook", "delivered")
        (info,) = await engine.deliveries.forwarders()
        assert info.state == "active"
    assert versions(recv) == ["2"]


async def test_next_attempt_times_are_persisted_not_slept(
    db: Path, receiver: StartReceiver
) -> None:
    """A retry scheduled far ahead is a time in the database, kept across a restart."""
    recv = await receiver(Fault(503))
    settings = engine_settings(
        db, [webhook("hook", recv.endpoint, retry={"schedule": ["1h"], "jitter": 0})]
    )
    async with running_engine(settings, db) as engine:
        dep = await engine.record()

        async def scheduled() -> Any:
            (d,) = await engine.of(dep)
            return d if d.attempts else None

        before = await eventually(scheduled)
    async with running_engine(settings, db) as engine:
        (after,) = await engine.of(dep)
    assert after.next_attempt_at == before.next_attempt_at
    assert after.next_attempt_at is not None
    assert after.next_attempt_at - utcnow() > timedelta(minutes=59)
    assert parse_db(format_db(after.next_attempt_at)) == after.next_attempt_at
