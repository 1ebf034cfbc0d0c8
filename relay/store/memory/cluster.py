"""The multi-instance side of the in-memory store: one process, so nothing to share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from relay.store.cluster_base import CircuitChange, CircuitSnapshot
from relay.store.memory.outbox import Row


class MemoryCluster:
    """Lease renewal and circuit state over `self.rows`; mixed into MemoryStore."""

    rows: dict[str, Row]

    def __init__(self) -> None:
        super().__init__()
        self.circuit_states: dict[str, CircuitSnapshot] = {}

    async def renew(self, owner: str, ids: Sequence[str], until: datetime) -> int:
        """Extend the leases `owner` holds on pending rows `ids`."""
        count = 0
        for delivery_id in ids:
            row = self.rows.get(delivery_id)
            if row is not None and row.owner == owner and row.status == "pending":
                row.locked_until = until
                count += 1
        return count

    async def update_circuit(self, forwarder: str, change: CircuitChange) -> CircuitSnapshot:
        """Apply `change` to the forwarder's circuit state."""
        new = change(self.circuit_states.get(forwarder, CircuitSnapshot()))
        self.circuit_states[forwarder] = new
        return new

    async def circuits(self) -> dict[str, CircuitSnapshot]:
        """Every forwarder's circuit state."""
        return dict(self.circuit_states)

    def add_due_listener(self, callback: Callable[[], None]) -> None:
        """One process: the dispatcher's in-process wake-up covers everything."""

    def add_commit_listener(self, callback: Callable[[], None]) -> None:
        """A write is answered at once: the answer's wake-up covers it."""
