"""What an attempt's outcome makes of its delivery, and the writing of those completions
in groups.

A send's slot hands its completion over and goes on with the next send: whatever
finished while one group was being written goes into the next store call. A delivery
stays leased (and its lease renewed) until its completion is written, and its
deployment's next event is not claimable before that, so the order of a deployment's
events and at-least-once delivery are those of a completion written one by one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog

from forwarders.base import (
    Delivered,
    ForwarderConfig,
    ForwarderError,
    PermanentFailure,
    RetryLater,
    SendContext,
    Skipped,
)
from relay.delivery.circuit import Signal
from relay.delivery.retry import next_attempt
from relay.models import Attempt, AttemptOutcome
from relay.store.base import Claimed, Completion, Store
from relay.timeutil import utcnow

log = structlog.get_logger("relay.dispatch")
EXCERPT_BYTES = 2048

Listener = Callable[[Completion, Claimed], None]


def settle(
    config: ForwarderConfig,
    claimed: Claimed,
    context: SendContext,
    outcome: Delivered | Skipped | ForwarderError,
    started: datetime,
    duration_ms: float,
    success_log: Any,
) -> tuple[Completion, Signal | None]:
    """The completion of one attempt, and what it tells the circuit breaker (None: the
    target was not called); logs every outcome but a success at info or warning."""
    finished = utcnow()
    number = context.attempt
    if isinstance(outcome, Delivered):
        # Debug: a line per success would cost more than the send; the attempt is
        # recorded either way, and every failure is logged at info or warning.
        success_log.debug(
            "delivery_succeeded",
            duration_ms=duration_ms,
            forwarder=config.name,
            delivery_id=claimed.id,
            attempt=number,
        )
        attempt = _attempt(number, started, duration_ms, outcome, "delivered", None)
        return _completion(claimed, context, attempt, "delivered", None, finished), "success"
    fields = {"forwarder": config.name, "delivery_id": claimed.id, "attempt": number}
    next_at: datetime | None = None
    signal: Signal | None = "success"
    kind: AttemptOutcome
    if isinstance(outcome, Skipped):
        status, kind, error, signal = "skipped", "skipped", outcome.reason, None
        log.info("delivery_skipped", reason=error, **fields)
    elif isinstance(outcome, PermanentFailure):
        status, kind, error = "dead", "dead", outcome.reason  # the target answered
        log.warning("delivery_dead", reason=error, status_code=outcome.status_code, **fields)
    else:
        assert isinstance(outcome, RetryLater)
        error, signal = outcome.reason, "failure"
        decision = next_attempt(config.retry, number, finished, outcome.at)
        if decision.dead:
            status, kind = "dead", "dead"
            log.warning("delivery_dead", reason=f"{error}; {decision.reason}", **fields)
        else:
            status, kind, next_at = "pending", "retry", decision.at
            log.info("delivery_retry_scheduled", reason=error, at=str(next_at), **fields)
    attempt = _attempt(number, started, duration_ms, outcome, kind, error)
    return _completion(claimed, context, attempt, status, next_at, finished), signal


def _attempt(
    number: int,
    started: datetime,
    duration_ms: float,
    outcome: Delivered | Skipped | ForwarderError,
    kind: AttemptOutcome,
    error: str | None,
) -> Attempt:
    # Every value is relay's own (an aware UTC time, an int or None): built without
    # validation, which would cost more than the rest of settling an attempt.
    return Attempt.model_construct(
        number=number,
        started_at=started,
        duration_ms=duration_ms,
        status_code=getattr(outcome, "status_code", None),
        outcome=kind,
        error=error,
        response_excerpt=getattr(outcome, "excerpt", "")[:EXCERPT_BYTES] or None,
    )


def _completion(
    claimed: Claimed,
    context: SendContext,
    attempt: Attempt,
    status: str,
    next_at: datetime | None,
    finished: datetime,
) -> Completion:
    return Completion(
        delivery_id=claimed.id,
        forwarder=claimed.forwarder,
        deployment_id=claimed.deployment_id,
        attempt=attempt,
        status=status,  # type: ignore[arg-type]
        next_attempt_at=next_at,
        state=context.state,
        shared=context.shared,
        error=attempt.error,
        status_code=attempt.status_code,
        finished_at=finished,
    )


class Recorder:
    """Completions waiting to be written, and the one task writing them."""

    def __init__(
        self,
        store: Store,
        held: set[str],
        listeners: list[Listener],
        on_written: Callable[[], None],
    ) -> None:
        self.store = store
        self._held = held  # leases renewed until their completion is written
        self._listeners = listeners
        self._on_written = on_written
        self._pending: list[tuple[Claimed, Completion]] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, claimed: Claimed, completion: Completion) -> None:
        """Queue `completion` for the next write; never waits."""
        self._pending.append((claimed, completion))
        if self._task is None:
            self._task = asyncio.create_task(self._write(), name="relay-completions")

    async def drain(self) -> None:
        """Wait until every completion queued so far is written (or has failed)."""
        while self._task is not None:
            await asyncio.shield(self._task)

    async def _write(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._write_batch(batch)
        finally:
            self._task = None

    async def _write_batch(self, batch: list[tuple[Claimed, Completion]]) -> None:
        failed: set[str] = set()
        try:
            await self.store.complete_many([completion for _, completion in batch])
        except Exception:
            failed = await self._one_by_one(batch)
        for claimed, completion in batch:
            self._held.discard(claimed.id)
            if claimed.id in failed:
                continue
            for listener in self._listeners:
                try:
                    listener(completion, claimed)
                except Exception:
                    log.exception("delivery_listener_failed", delivery_id=claimed.id)
        self._on_written()

    async def _one_by_one(self, batch: list[tuple[Claimed, Completion]]) -> set[str]:
        # One completion the store refuses must not cost the others theirs.
        failed: set[str] = set()
        for claimed, completion in batch:
            try:
                await self.store.complete(completion)
            except Exception:
                # The lease runs out and the delivery is claimed again: nothing is lost.
                log.exception("delivery_not_recorded", delivery_id=claimed.id)
                failed.add(claimed.id)
        return failed
