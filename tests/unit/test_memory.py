"""The in-memory store (relay/store/memory.py) against the shared store contract."""

from __future__ import annotations

from relay.store import open_store
from relay.store.memory.store import MemoryStore
from tests.store_contract import DialectContract, StoreContract


class TestMemoryStore(StoreContract, DialectContract):
    """MemoryStore behaves like every other store (the seed dialects' operations too)."""


def test_memory_url_opens_a_memory_store() -> None:
    """`storage.url = "memory://"` selects the in-memory store."""
    assert isinstance(open_store("memory://"), MemoryStore)
