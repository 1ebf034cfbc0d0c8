"""Dashboard storage on a real SQLite file (relay/store/sqlite/dashboard.py)."""

from __future__ import annotations

from tests.dashboard_contract import DashboardContract


class TestSqliteDashboard(DashboardContract):
    """SqliteStore keeps sessions and summaries like every other store."""
