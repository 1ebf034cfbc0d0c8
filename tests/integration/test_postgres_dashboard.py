"""Dashboard storage on a real PostgreSQL server (relay/store/postgres/dashboard.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from relay.store.postgres.store import PostgresStore
from tests.dashboard_contract import DashboardContract


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresStore]:
    """An opened PostgresStore on a fresh schema."""
    store = PostgresStore(pg_url, pool_max=4)
    await store.open()
    yield store
    await store.close()


class TestPostgresDashboard(DashboardContract):
    """PostgresStore keeps sessions and summaries like every other store."""
