"""Retention on the in-memory store (relay/store/memory/retention.py)."""

from __future__ import annotations

from tests.retention_contract import RetentionContract


class TestMemoryRetention(RetentionContract):
    """MemoryStore prunes like every other store."""
