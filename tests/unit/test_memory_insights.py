"""Deploy insights on the in-memory store (relay/store/memory/insights.py)."""

from __future__ import annotations

from tests.insights_contract import InsightsContract


class TestMemoryInsights(InsightsContract):
    """MemoryStore counts and computes DORA figures like every other store."""
