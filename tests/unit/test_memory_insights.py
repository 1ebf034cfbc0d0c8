"""Deploy insights on the in-memory store (relay/store/memory/insights.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from relay.store.memory.store import MemoryStore
from tests.insights_contract import InsightsContract


class TestMemoryInsights(InsightsContract):
    """MemoryStore counts and computes DORA figures like every other store."""

    @pytest.fixture
    async def store(self) -> AsyncIterator[MemoryStore]:
        """An opened, empty in-memory store."""
        store = MemoryStore()
        await store.open()
        yield store
        await store.close()
