"""Dashboard storage on the in-memory store (relay/store/memory/dashboard.py)."""

from __future__ import annotations

from tests.dashboard_contract import DashboardContract


class TestMemoryDashboard(DashboardContract):
    """MemoryStore keeps sessions and summaries like every other store."""
