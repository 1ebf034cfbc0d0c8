"""A configured forwarder as the dispatcher runs it: its breaker, slots and secrets."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from forwarders.base import Forwarder, ForwarderConfig
from relay.delivery.circuit import CircuitBreaker
from relay.store.base import Claimed


@dataclass
class Target:
    """A configured forwarder as the dispatcher runs it."""

    config: ForwarderConfig
    forwarder: Forwarder
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    in_flight: int = 0
    disabled_reason: str | None = None
    # Claimed (leased) and not yet being sent: a freed slot starts the next of these at
    # once instead of waiting for a claim to come back from the store.
    ready: deque[Claimed] = field(default_factory=deque)
    # The forwarder's send() awaits nothing but one transport call, which the transport
    # bounds by the forwarder's timeout: the dispatcher need not bound it again.
    one_request: bool = field(init=False)
    # This process's part of the forwarder's concurrency: all of it, unless several
    # worker processes deliver (relay worker --processes).
    slots: int = -1
    # A 410's disable, counted when it happens and while its write is in flight: shared
    # state read back from the store (delivery/shared.py) before that write was stored
    # must not enable the forwarder again.
    disables: int = 0
    disabling: int = 0
    # The config's secret values (tokens, keys, a URL with a key in it): masked in every
    # outcome before it is stored, whatever the forwarder or its transport put there.
    secrets: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.one_request = getattr(self.forwarder, "one_request", False) is True
        if self.slots < 0:
            self.slots = self.config.concurrency
        self.secrets = tuple(s for s in self.config.secrets() if s)

    @property
    def active(self) -> bool:
        """Enabled in the config and not disabled by its target (410)."""
        return self.disabled_reason is None and self.config.enabled

    def may_start(self, now: datetime) -> bool:
        """Whether one more send may start now (active, a free slot, the circuit)."""
        free = self.slots - self.in_flight
        return self.active and self.breaker.allowance(now, free) > 0
