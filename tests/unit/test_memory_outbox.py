"""The delivery side of the in-memory store (relay/store/memory/outbox.py)."""

from __future__ import annotations

from datetime import datetime

from relay.models import Deployment
from relay.store.base import Store
from tests.outbox_contract import OutboxContract, later_command


class TestMemoryOutbox(OutboxContract):
    """MemoryStore's outbox behaves like every other store's."""

    async def later_event(
        self, store: Store, record: Deployment, forwarders: tuple[str, ...], at: datetime
    ) -> list[str]:
        """The memory store records a repeated deployment as another event of it."""
        command = later_command(record, forwarders, at)
        await store.record(command)
        return [d.id for d in command.deliveries]
