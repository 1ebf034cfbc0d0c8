"""Retention on a real SQLite file (relay/store/sqlite/retention.py)."""

from __future__ import annotations

from tests.retention_contract import RetentionContract


class TestSqliteRetention(RetentionContract):
    """SqliteStore prunes like every other store."""
