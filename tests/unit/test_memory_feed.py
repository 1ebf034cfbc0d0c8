"""The live feed's reads on the in-memory store (relay/store/memory/feed.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from relay.store.memory.store import MemoryStore
from tests.feed_contract import FeedContract


class TestMemoryFeed(FeedContract):
    """MemoryStore's feed reads behave like every other store's."""

    @pytest.fixture
    async def store(self) -> AsyncIterator[MemoryStore]:
        """An opened, empty in-memory store."""
        store = MemoryStore()
        await store.open()
        yield store
        await store.close()
