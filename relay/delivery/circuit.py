"""A per-forwarder circuit breaker: pure state, driven by the dispatcher."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

# The state shared through the store; defined there so that the store needs nothing of
# delivery, and exported here beside the breaker that reads and writes it.
from relay.store.cluster_base import CircuitSnapshot as CircuitSnapshot

CircuitState = Literal["closed", "open", "half-open"]
# What an attempt tells the breaker: the target answered, or it failed transiently.
Signal = Literal["success", "failure"]


@dataclass
class CircuitBreaker:
    """Opens after `threshold` consecutive transient failures; while open no delivery of
    the forwarder is claimed (so no attempt is spent); after `cooldown` one probe is let
    through; its success closes the circuit, its failure re-opens it for twice as long."""

    threshold: int = 5
    cooldown: timedelta = timedelta(seconds=30)
    max_cooldown: timedelta = timedelta(minutes=10)
    failures: int = 0
    opened_until: datetime | None = None
    current_cooldown: timedelta | None = None
    probing: bool = False

    def snapshot(self) -> CircuitSnapshot:
        """The shareable part of this breaker's state."""
        return CircuitSnapshot(self.failures, self.opened_until, self.current_cooldown)

    def is_closed_clean(self) -> bool:
        """Closed with no failure counted: a success changes nothing (snapshot() is the
        default CircuitSnapshot())."""
        return self.failures == 0 and self.opened_until is None and self.current_cooldown is None

    def restore(self, shared: CircuitSnapshot) -> None:
        """Adopt the shared state (another instance may have moved it); `probing` is this
        instance's own business and stays."""
        self.failures = shared.failures
        self.opened_until = shared.opened_until
        self.current_cooldown = shared.cooldown

    def moved(
        self, shared: CircuitSnapshot, signal: Signal, now: datetime
    ) -> tuple[CircuitSnapshot, bool]:
        """`shared` after `signal`, by this breaker's rules, leaving this breaker as it is;
        True when the signal opened (or re-opened) the circuit."""
        trial = replace(self)
        trial.restore(shared)
        opened = False
        if signal == "failure":
            opened = trial.on_failure(now)
        else:
            trial.on_success()
        return trial.snapshot(), opened

    def state(self, now: datetime) -> CircuitState:
        """closed, open (waiting), or half-open (a probe may go)."""
        if self.opened_until is None:
            return "closed"
        return "open" if now < self.opened_until else "half-open"

    def allowance(self, now: datetime, free_slots: int) -> int:
        """How many deliveries may be claimed now."""
        state = self.state(now)
        if state == "closed":
            return free_slots
        if state == "half-open" and not self.probing:
            return min(1, free_slots)
        return 0

    def on_claimed(self, now: datetime) -> None:
        """Note that a probe went out while half-open."""
        if self.state(now) == "half-open":
            self.probing = True

    def on_success(self) -> None:
        """The target answered: close the circuit."""
        self.failures, self.opened_until, self.current_cooldown, self.probing = 0, None, None, False

    def on_skipped(self) -> None:
        """The target was not called: the circuit stays as it is, another probe may go."""
        self.probing = False

    def on_failure(self, now: datetime) -> bool:
        """A transient failure; returns True when this failure opened the circuit."""
        self.failures += 1
        was_probe, self.probing = self.probing, False
        if was_probe:
            previous = self.current_cooldown or self.cooldown
            self.current_cooldown = min(previous * 2, self.max_cooldown)
        elif self.failures >= self.threshold and self.opened_until is None:
            self.current_cooldown = self.cooldown
        else:
            return False
        self.opened_until = now + self.current_cooldown
        return True
