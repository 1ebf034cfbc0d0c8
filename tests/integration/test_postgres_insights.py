"""Deploy insights on a real PostgreSQL server (relay/store/postgres/insights.py,
migration 0005)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from relay.store.postgres.store import PostgresStore
from tests.insights_contract import InsightsContract


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresStore]:
    """An opened PostgresStore on a fresh schema."""
    store = PostgresStore(pg_url, pool_max=4)
    await store.open()
    yield store
    await store.close()


class TestPostgresInsights(InsightsContract):
    """PostgresStore counts and computes DORA figures like every other store."""
