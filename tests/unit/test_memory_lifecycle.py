"""The in-memory store's lifecycle side (relay/store/memory/lifecycle.py) against the contract."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from relay.store.memory.store import MemoryStore
from tests.lifecycle_contract import LifecycleContract


class TestMemoryLifecycle(LifecycleContract):
    """MemoryStore's status changes, rollback facts, outputs and releases match SQLite's."""

    @pytest.fixture
    async def store(self) -> AsyncIterator[MemoryStore]:
        """An opened, empty in-memory store."""
        store = MemoryStore()
        await store.open()
        yield store
        await store.close()
