"""Deploy insights on a real SQLite file (relay/store/sqlite/insights.py, migration 0007)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from relay.store.sqlite.store import SqliteStore
from tests.insights_contract import InsightsContract, history


class TestSqliteInsights(InsightsContract):
    """SqliteStore counts and computes DORA figures like every other store."""


async def test_the_dora_window_query_uses_the_window_indexes(db: Path, store: SqliteStore) -> None:
    """The DORA query reads deployments through an index, not by scanning the table."""
    from relay.store.insights_base import DoraQuery
    from relay.store.sqlite.insights import dora_statement
    from tests.insights_contract import SINCE, UNTIL

    await history(store)
    for query in (
        DoraQuery(SINCE, UNTIL, "production", ("web",)),
        DoraQuery(SINCE, UNTIL, "production"),
        DoraQuery(SINCE, UNTIL, grouped=True),
    ):
        statement, params = dora_statement(query)
        conn = sqlite3.connect(db)
        try:
            plan = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + statement, params)]
        finally:
            conn.close()
        reads = [step for step in plan if " deployments" in step or " s " in f"{step} "]
        assert reads, plan
        assert all(" USING " in step and "INDEX" in step for step in reads), plan
