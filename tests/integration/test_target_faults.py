"""Targets that misbehave at the HTTP and TCP level (tests/fault_server.py): every fault
ends delivered after recovery or dead with a clear reason, memory stays bounded, and a
healthy forwarder's deliveries are not slowed meanwhile. (503s, 429 in seconds, 4xx,
refused connections and slow answers are in test_dispatch.py.)"""

from __future__ import annotations

import email.utils
import time
import tracemalloc
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from relay.models import Delivery
from relay.standins.webhook import WebhookReceiver
from tests.delivery_support import SECRET, Engine, engine_settings, running_engine, webhook
from tests.fault_server import FaultServer

HEALTHY_WITHIN = 0.3  # seconds from record to delivered for the healthy forwarder


@pytest.fixture
async def faulty() -> AsyncIterator[FaultServer]:
    """The misbehaving target."""
    server = await FaultServer().start()
    yield server
    await server.stop()


@pytest.fixture
async def healthy() -> AsyncIterator[WebhookReceiver]:
    """A well-behaved target next to it."""
    recv = WebhookReceiver(SECRET)
    await recv.start()
    yield recv
    await recv.stop()


async def run_fault(
    db: Path, faulty: FaultServer, healthy: WebhookReceiver, status: str
) -> tuple[Delivery, float]:
    """Record one deployment for both targets; the faulty delivery once it is `status`,
    and how long the healthy forwarder's delivery took."""
    settings = engine_settings(
        db,
        [
            webhook("faulty", faulty.url, timeout="1s"),
            webhook("healthy", healthy.endpoint),
        ],
    )
    engine: Engine
    async with running_engine(settings, db) as engine:
        dep = await engine.record()
        fast = await engine.settled(dep, "healthy", "delivered")
        found = await engine.settled(dep, "faulty", status)
    assert fast.delivered_at is not None
    return found, (fast.delivered_at - fast.created_at).total_seconds()


@pytest.mark.parametrize(
    ("script", "first_error"),
    [
        (["status:500", "status:500"], "webhook answered HTTP 500"),
        (["reset"], "Connection reset by peer"),
        (["hang"], "webhook did not answer within 1s"),
        (["drip"], "webhook did not answer within 1s"),
    ],
    ids=["500", "reset-mid-response", "never-answers", "drips-a-byte-a-second"],
)
async def test_transient_faults_are_retried_until_delivered(
    tmp_path: Path,
    faulty: FaultServer,
    healthy: WebhookReceiver,
    script: list[str],
    first_error: str,
) -> None:
    """500s, a reset, silence and a dripping answer are retried, and the send ends delivered."""
    faulty.script = list(script)
    found, healthy_took = await run_fault(tmp_path / "relay.db", faulty, healthy, "delivered")
    log = found.attempt_log or []
    assert [a.outcome for a in log] == ["retry"] * len(script) + ["delivered"]
    assert first_error in (log[0].error or ""), log[0]
    assert healthy_took < HEALTHY_WITHIN


async def test_429_with_an_http_date_waits_until_that_date(
    tmp_path: Path, faulty: FaultServer, healthy: WebhookReceiver
) -> None:
    """`Retry-After` as an HTTP date postpones the next attempt to that date."""
    when = datetime.now(UTC) + timedelta(seconds=3)
    faulty.script = [f"status:429:Retry-After: {email.utils.format_datetime(when, usegmt=True)}"]
    found, healthy_took = await run_fault(tmp_path / "relay.db", faulty, healthy, "delivered")
    first, second = found.attempt_log or []
    assert (first.outcome, first.status_code) == ("retry", 429)
    assert second.started_at >= when.replace(microsecond=0)  # the date has 1 s resolution
    assert healthy_took < HEALTHY_WITHIN


async def test_a_redirect_is_not_followed_and_is_dead(
    tmp_path: Path, faulty: FaultServer, healthy: WebhookReceiver
) -> None:
    """A 307 to another server kills the delivery with a reason; the other server sees nothing."""
    elsewhere = await FaultServer().start()
    try:
        faulty.script = [f"redirect:{elsewhere.url}"]
        found, healthy_took = await run_fault(tmp_path / "relay.db", faulty, healthy, "dead")
    finally:
        await elsewhere.stop()
    (attempt,) = found.attempt_log or []
    assert attempt.status_code == 307
    assert attempt.error == "webhook answered a redirect (HTTP 307), which relay does not follow"
    assert elsewhere.requests == 0
    assert healthy_took < HEALTHY_WITHIN


async def test_a_50_mb_answer_is_cut_off_not_read(
    tmp_path: Path, faulty: FaultServer, healthy: WebhookReceiver
) -> None:
    """A 50 MB answer body: relay keeps 64 KiB, closes the connection, and stays small."""
    faulty.script = ["huge"]
    tracemalloc.start()
    try:
        started = time.monotonic()
        found, healthy_took = await run_fault(tmp_path / "relay.db", faulty, healthy, "delivered")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (attempt,) = found.attempt_log or []
    assert attempt.outcome == "delivered"
    assert peak < 16 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    (sent,) = faulty.sent_bytes
    assert sent < 10 * 1024 * 1024, f"the server pushed {sent / 1e6:.1f} MB: it was drained"
    assert time.monotonic() - started < 10
    assert healthy_took < HEALTHY_WITHIN
