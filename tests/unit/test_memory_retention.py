"""Retention on the in-memory store (relay/store/memory/retention.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from relay.store.memory.store import MemoryStore
from tests.retention_contract import RetentionContract


class TestMemoryRetention(RetentionContract):
    """MemoryStore prunes like every other store."""

    @pytest.fixture
    async def store(self) -> AsyncIterator[MemoryStore]:
        """An opened, empty in-memory store."""
        store = MemoryStore()
        await store.open()
        yield store
        await store.close()
