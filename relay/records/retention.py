"""Retention: a background task that deletes old rows (`[storage.retention]`) in small batches.

Every `interval` the pruner runs one round: it asks the store for one batch of each rule
(relay/store/retention_base.py), lets every other task run (ingest above all), and asks
again until a call deletes nothing. Each batch is its own short transaction, so a round
over millions of old rows never holds the database for long; on SQLite the batches go
through the same group-commit writer as ingest, which commits its requests in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from relay.errors import RelayError
from relay.settings import RetentionSettings
from relay.store.retention_base import PruneResult, RetentionPolicy, RetentionStore
from relay.timeutil import utcnow

log = structlog.get_logger("relay.retention")


def policy_from(settings: RetentionSettings) -> RetentionPolicy:
    """The policy of `[storage.retention]`: a duration of 0 keeps that kind forever."""

    def limit(seconds: float) -> timedelta | None:
        return timedelta(seconds=seconds) if seconds > 0 else None

    return RetentionPolicy(
        attempts=limit(settings.attempts),
        deliveries=limit(settings.deliveries),
        events=limit(settings.events),
        deployments=limit(settings.deployments),
        idempotency_keys=limit(settings.idempotency_keys),
    )


class Pruner:
    """Applies a retention policy to a store, round after round, until stopped."""

    def __init__(
        self,
        store: RetentionStore,
        policy: RetentionPolicy,
        *,
        batch_size: int = 500,
        interval: float = 600.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.policy = policy
        self.batch_size = batch_size
        self.interval = interval
        self.clock = clock
        self.rounds = 0  # rounds finished (pruned, or failed and logged)
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, store: RetentionStore, settings: RetentionSettings) -> Pruner:
        """A pruner for `[storage.retention]`."""
        return cls(
            store,
            policy_from(settings),
            batch_size=settings.batch_size,
            interval=settings.interval,
        )

    async def prune_all(self) -> PruneResult:
        """One round: batch after batch until nothing is left; other tasks run in between.
        Logs `retention_pruned` with the counts when anything was deleted."""
        started = time.monotonic()
        total, batches = PruneResult(), 0
        while True:
            result = await self.store.prune(self.policy, self.clock(), self.batch_size)
            if result.total == 0:
                break
            total += result
            batches += 1
            await asyncio.sleep(0)  # let ingest (and everything else) go first
        if total.total:
            duration_ms = round((time.monotonic() - started) * 1000, 1)
            log.info("retention_pruned", batches=batches, duration_ms=duration_ms, **total.counts())
        return total

    @property
    def running(self) -> bool:
        """True between start() (with a policy that deletes something) and stop()."""
        return self._task is not None

    def start(self, ready: asyncio.Event | None = None) -> None:
        """Run rounds in the background (after `ready` is set, e.g. once the store is open);
        does nothing when the policy keeps everything."""
        if not self.policy.enabled or self._task is not None:
            return
        self._task = asyncio.create_task(self._run(ready), name="relay-retention")

    async def stop(self) -> None:
        """Stop between (or in the middle of) batches; a batch cut short is rolled back or
        finished by the store, never half-applied. Calling it again does nothing."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self, ready: asyncio.Event | None) -> None:
        if ready is not None:
            await ready.wait()
        limits = {
            kind: limit.total_seconds()
            for kind, limit in vars(self.policy).items()
            if limit is not None
        }
        log.info("retention_started", interval=self.interval, batch_size=self.batch_size, **limits)
        while True:
            try:
                await self.prune_all()
            except RelayError as exc:  # the store is down or full: try again next round
                log.warning("retention_failed", error=exc.message)
            except Exception:
                log.exception("retention_failed")
            self.rounds += 1
            await asyncio.sleep(self.interval)
