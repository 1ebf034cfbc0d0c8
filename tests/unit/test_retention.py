"""The pruner (relay/records/retention.py) on the in-memory store; `[storage.retention]`."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from structlog.testing import capture_logs

from relay.errors import ConfigError, StoreError
from relay.records.retention import Pruner, policy_from
from relay.store.memory.store import MemoryStore
from relay.store.retention_base import PruneResult, RetentionPolicy
from tests.delivery_support import eventually
from tests.retention_contract import PRUNE_AT, WEEK, deploy
from tests.support import T0, make_settings

S = timedelta(seconds=1)
EVENTS = RetentionPolicy(events=WEEK)


async def old_events(store: MemoryStore, n: int) -> None:
    """Record `n` deployments (one event each) long before PRUNE_AT."""
    for i in range(n):
        await deploy(store, f"v{i}", at=T0 + i * S)


class ScriptedStore:
    """A store whose prune answers from a script, noting what ran in between."""

    def __init__(self, answers: list[PruneResult | Exception]) -> None:
        self.answers = answers
        self.calls: list[int] = []
        self.ticks = 0  # advanced by a concurrent task

    async def prune(self, policy: RetentionPolicy, now: datetime, batch_size: int) -> PruneResult:
        """The next scripted answer (PruneResult() once the script is exhausted)."""
        self.calls.append(self.ticks)
        answer = self.answers.pop(0) if self.answers else PruneResult()
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_a_round_prunes_batch_after_batch_until_nothing_is_left() -> None:
    """One round deletes everything due, in batches, and logs `retention_pruned` once."""
    store = MemoryStore()
    await old_events(store, 5)
    pruner = Pruner(store, EVENTS, batch_size=2, clock=lambda: PRUNE_AT)
    with capture_logs() as logs:
        total = await pruner.prune_all()
    assert total == PruneResult(events=5)
    assert store.event_rows == []
    (entry,) = [e for e in logs if e["event"] == "retention_pruned"]
    assert (entry["events"], entry["batches"], entry["attempts"]) == (5, 3, 0)
    with capture_logs() as logs:
        assert await pruner.prune_all() == PruneResult()
    assert [e for e in logs if e["event"] == "retention_pruned"] == []


async def test_other_tasks_run_between_batches() -> None:
    """Between two batches every other ready task gets its turn (ingest is never starved)."""
    store = ScriptedStore([PruneResult(events=1)] * 4)

    async def ticker() -> None:
        while True:
            store.ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    try:
        await Pruner(store, EVENTS, clock=lambda: PRUNE_AT).prune_all()
    finally:
        task.cancel()
    assert len(store.calls) == 5
    assert all(b > a for a, b in zip(store.calls, store.calls[1:], strict=False))


async def test_the_background_task_prunes_every_interval_and_stops_cleanly() -> None:
    """Started, the pruner runs a round at once and then every `interval`; stop ends it."""
    store = MemoryStore()
    await old_events(store, 3)
    pruner = Pruner(store, EVENTS, batch_size=2, interval=0.05, clock=lambda: PRUNE_AT)
    pruner.start()
    try:
        assert pruner.running
        await eventually(lambda: not store.event_rows, what="first round")
        await old_events(store, 2)
        await eventually(lambda: not store.event_rows and pruner.rounds >= 2, what="next round")
    finally:
        await pruner.stop()
    assert not pruner.running
    await pruner.stop()  # a second stop does nothing


async def test_rounds_wait_until_the_store_is_ready() -> None:
    """Nothing is pruned before `ready` is set (the store may open late)."""
    store = MemoryStore()
    await old_events(store, 2)
    ready = asyncio.Event()
    pruner = Pruner(store, EVENTS, interval=0.05, clock=lambda: PRUNE_AT)
    pruner.start(ready)
    try:
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(store.event_rows) == 2
        ready.set()
        await eventually(lambda: not store.event_rows)
    finally:
        await pruner.stop()


async def test_a_failing_round_is_logged_and_the_next_one_runs() -> None:
    """A store error ends the round with `retention_failed`; the next round prunes."""
    store = ScriptedStore([StoreError("the database is read-only"), PruneResult(attempts=3)])
    pruner = Pruner(store, RetentionPolicy(attempts=WEEK), interval=0.01)
    with capture_logs() as logs:
        pruner.start()
        try:
            await eventually(lambda: pruner.rounds >= 2)
        finally:
            await pruner.stop()
    names = [e["event"] for e in logs]
    assert names.index("retention_failed") < names.index("retention_pruned")
    failed = next(e for e in logs if e["event"] == "retention_failed")
    assert failed["error"] == "the database is read-only"


async def test_a_policy_that_keeps_everything_starts_nothing() -> None:
    """Without any limit there is no background task at all."""
    pruner = Pruner(MemoryStore(), RetentionPolicy(), interval=0.01)
    pruner.start()
    assert not pruner.running
    await pruner.stop()


def test_settings_give_the_policy_and_zero_keeps_forever() -> None:
    """Durations become limits; 0 and absent keys keep that kind of row forever."""
    settings = make_settings(None)
    assert policy_from(settings.storage.retention) == RetentionPolicy()
    assert (settings.storage.retention.batch_size, settings.storage.retention.interval) == (
        500,
        600.0,
    )
    retention = {"attempts": "30d", "deliveries": "90d", "events": 0, "interval": "10m"}
    settings = make_settings(None, storage={"retention": retention})
    assert policy_from(settings.storage.retention) == RetentionPolicy(
        attempts=timedelta(days=30), deliveries=timedelta(days=90)
    )
    assert settings.storage.retention.interval == 600.0


def test_environment_overrides_a_retention_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """RELAY_STORAGE__RETENTION__EVENTS sets the events limit like the file would."""
    monkeypatch.setenv("RELAY_STORAGE__RETENTION__EVENTS", "365d")
    settings = make_settings(None)
    assert policy_from(settings.storage.retention).events == timedelta(days=365)


def test_invalid_retention_settings_are_explained() -> None:
    """A bad duration, batch size or unknown key is an error naming its location."""
    retention = {"events": "a year", "batch_size": 0, "forever": True}
    with pytest.raises(ConfigError) as caught:
        make_settings(None, storage={"retention": retention})
    fields = {d["field"] for d in caught.value.details}
    assert fields == {
        "storage.retention.events",
        "storage.retention.batch_size",
        "storage.retention.forever",
    }
