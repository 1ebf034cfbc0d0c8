"""The live feed's reads on the in-memory store (relay/store/memory/feed.py)."""

from __future__ import annotations

from tests.feed_contract import FeedContract


class TestMemoryFeed(FeedContract):
    """MemoryStore's feed reads behave like every other store's."""
