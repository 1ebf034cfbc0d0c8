"""The in-memory store's lifecycle side (relay/store/memory/lifecycle.py) against the contract."""

from __future__ import annotations

from tests.lifecycle_contract import LifecycleContract


class TestMemoryLifecycle(LifecycleContract):
    """MemoryStore's status changes, rollback facts, outputs and releases match SQLite's."""
