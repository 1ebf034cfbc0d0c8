"""The live feed's reads on a real SQLite file (relay/store/sqlite_feed.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay.store.sqlite import SqliteStore
from tests.feed_contract import FeedContract


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """An opened SqliteStore on a fresh file."""
    store = SqliteStore(tmp_path / "relay.db")
    await store.open()
    yield store
    await store.close()


class TestSqliteFeed(FeedContract):
    """SqliteStore's feed reads behave like every other store's."""
