"""Dashboard storage on the in-memory store (relay/store/memory/dashboard.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from relay.store.memory.store import MemoryStore
from tests.dashboard_contract import DashboardContract


class TestMemoryDashboard(DashboardContract):
    """MemoryStore keeps sessions and summaries like every other store."""

    @pytest.fixture
    async def store(self) -> AsyncIterator[MemoryStore]:
        """An opened, empty in-memory store."""
        store = MemoryStore()
        await store.open()
        yield store
        await store.close()
