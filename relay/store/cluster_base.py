"""What several relay instances on one database share beyond the outbox itself: leases
renewed while a send is in flight, the circuit breakers' state, and wake-ups when another
instance commits due deliveries. Stores of one process implement them trivially."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol


@dataclass(frozen=True)
class CircuitSnapshot:
    """The part of a breaker's state that every relay instance shares through the store:
    consecutive failures, when an open circuit half-opens, the current open period."""

    failures: int = 0
    opened_until: datetime | None = None
    cooldown: timedelta | None = None


CircuitChange = Callable[[CircuitSnapshot], CircuitSnapshot]


class ClusterStore(Protocol):
    """The multi-instance side of the Store."""

    async def renew(self, owner: str, ids: Sequence[str], until: datetime) -> int:
        """Extend to `until` the leases `owner` still holds on pending deliveries `ids`;
        how many it still held."""

    async def update_circuit(self, forwarder: str, change: CircuitChange) -> CircuitSnapshot:
        """Apply the pure function `change` to the forwarder's shared circuit state, with no
        other writer in between; the new state."""

    async def circuits(self) -> dict[str, CircuitSnapshot]:
        """The shared circuit state of every forwarder that has one."""

    def add_due_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever another process commits deliveries that are due now
        (a database shared by several instances); a store of one process never does."""

    def add_commit_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback` when this process commits writes that may add due deliveries,
        if that comes before the writes are answered (SQLite: at the commit, before the
        fsync that the answer waits for). A store that answers at the commit calls
        nothing: whoever gets the answer wakes the dispatcher then."""
