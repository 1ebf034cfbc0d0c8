"""Retention on a real SQLite file (relay/store/sqlite_retention.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay.store.sqlite import SqliteStore
from tests.retention_contract import RetentionContract


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """An opened SqliteStore on a fresh file."""
    store = SqliteStore(tmp_path / "relay.db")
    await store.open()
    yield store
    await store.close()


class TestSqliteRetention(RetentionContract):
    """SqliteStore prunes like every other store."""
