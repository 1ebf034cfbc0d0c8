"""The SQLite store's lifecycle side (relay/store/sqlite/lifecycle.py, sqlite_releases.py)
on a real file, against the shared contract."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from relay.models import Status
from relay.store.sqlite.store import SqliteStore
from tests.lifecycle_contract import LifecycleContract, finished, started, success
from tests.support import T0, make_command, make_record, minutes


class TestSqliteLifecycle(LifecycleContract):
    """SqliteStore passes the lifecycle contract (the `store` fixture of conftest.py)."""


async def test_rollback_in_one_group_commit_sees_the_earlier_rows(store: SqliteStore) -> None:
    """v1, v2, v1 committed in the same batch still make the third a rollback."""
    records = [
        make_record("api", v, stage="production", finished_at=T0 + minutes(i))
        for i, v in enumerate(["v1", "v2", "v1"])
    ]
    commands = [make_command(r) for r in records]
    await asyncio.gather(*(store.record(c) for c in commands))
    assert [c.event.data["is_rollback"] for c in commands] == [False, False, True]
    v2 = await store.get_record("deployment", "api", records[1].id)
    assert v2 is not None and v2.reverted is True


async def test_concurrent_transitions_one_wins(store: SqliteStore) -> None:
    """Two transitions from the same status committed together: exactly one applies."""
    record = await started(store, "v1", T0)
    results = await asyncio.gather(
        store.transition(finished(record, Status.SUCCESS, T0 + minutes(1))),
        store.transition(finished(record, Status.ABORTED, T0 + minutes(1))),
    )
    assert [r is not None for r in results] == [True, False]
    found = await store.get_record("deployment", "api", record.id)
    assert found is not None and found.status == Status.SUCCESS


async def test_rollback_facts_survive_a_restart(db: Path, store: SqliteStore) -> None:
    """is_rollback and reverted_* are stored columns, read back after reopening."""
    await success(store, "v1", T0)
    second = await success(store, "v2", T0 + minutes(1))
    third = await success(store, "v1", T0 + minutes(2))
    await store.close()
    again = SqliteStore(db)
    await again.open()
    try:
        v2 = await again.get_record("deployment", "api", second.id)
        v1 = await again.get_record("deployment", "api", third.id)
        assert v2 is not None and v2.reverted_by == "ci"
        assert v1 is not None and v1.is_rollback is True
    finally:
        await again.close()
    conn = sqlite3.connect(db)
    try:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM deployments WHERE kind = 'deployment' "
            "AND status = 'success' AND component = 'api' AND stage IS 'production' "
            "ORDER BY occurred_at DESC, seq DESC LIMIT 2"
        ).fetchall()
    finally:
        conn.close()
    assert "deployments_live" in str(plan)
