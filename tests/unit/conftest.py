"""Fixtures of the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from relay.store.memory.store import MemoryStore


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    """An opened, empty in-memory store."""
    store = MemoryStore()
    await store.open()
    yield store
    await store.close()
