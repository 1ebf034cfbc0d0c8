"""Retry policy: pure decisions of when to try a delivery again, built on tenacity's waits.

The decision is persisted as the delivery's `next_attempt_at`; nothing sleeps in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import tenacity
from tenacity.wait import wait_base

from forwarders.base import RetryConfig

MAX_REQUESTED_DELAY = timedelta(hours=24)


@dataclass(frozen=True)
class Decision:
    """What to do after a failed attempt: retry at `at`, or give up (`at` is None)."""

    at: datetime | None
    reason: str

    @property
    def dead(self) -> bool:
        """True when the delivery has used up its schedule."""
        return self.at is None


def _schedule_wait(config: RetryConfig) -> wait_base:
    # One step per retry: the configured delay with a symmetric random jitter.
    steps = [
        tenacity.wait_fixed(s) + tenacity.wait_random(-config.jitter * s, config.jitter * s)
        for s in config.schedule
    ]
    return tenacity.wait_chain(*steps)


def _retry_state(attempt: int) -> tenacity.RetryCallState:
    state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    return state


def next_attempt(
    config: RetryConfig, attempts_made: int, now: datetime, requested: datetime | None = None
) -> Decision:
    """After `attempts_made` failed attempts (the first try included), when to try again.

    `requested` is the time the target asked for (Retry-After and the like): the
    retry is never earlier than that, even when the schedule says sooner.
    """
    if attempts_made > len(config.schedule):
        return Decision(None, f"gave up after {attempts_made} attempts")
    delay = max(0.0, _schedule_wait(config)(_retry_state(attempts_made)))
    at = now + timedelta(seconds=delay)
    if requested is not None and requested > at:
        # Honour the target's wish, but never park a delivery for more than a day.
        return Decision(min(requested, now + MAX_REQUESTED_DELAY), "as the target asked")
    return Decision(at, f"retry {attempts_made} of {len(config.schedule)}")
