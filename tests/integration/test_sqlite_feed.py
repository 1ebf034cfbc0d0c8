"""The live feed's reads on a real SQLite file (relay/store/sqlite/feed.py)."""

from __future__ import annotations

from tests.feed_contract import FeedContract


class TestSqliteFeed(FeedContract):
    """SqliteStore's feed reads behave like every other store's."""
