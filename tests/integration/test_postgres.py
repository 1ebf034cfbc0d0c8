"""The PostgreSQL store (relay/store/postgres*.py) on a real server, against the shared
store and outbox contracts, plus what only a shared database has to get right."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from relay.models import Deployment
from relay.store import open_store
from relay.store.base import Store
from relay.store.postgres.events import insert_events
from relay.store.postgres.store import PostgresStore
from relay.store.retention_base import PruneResult, RetentionPolicy
from tests.feed_contract import FeedContract
from tests.lifecycle_contract import LifecycleContract
from tests.outbox_contract import OutboxContract, later_command
from tests.retention_contract import (
    PRUNE_AT,
    RECENT,
    WEEK,
    M,
    RetentionContract,
    S,
    deploy,
    drain,
    settle,
)
from tests.store_contract import DialectContract, StoreContract
from tests.support import T0, make_command, make_record


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresStore]:
    """An opened PostgresStore on a fresh schema."""
    store = PostgresStore(pg_url, pool_max=4)
    await store.open()
    yield store
    await store.close()


class TestPostgresStore(StoreContract):
    """PostgresStore behaves like every other store."""


class TestPostgresDialects(DialectContract):
    """PostgresStore serves the seed dialects like every other store."""


class TestPostgresOutbox(OutboxContract):
    """PostgresStore's outbox behaves like every other store's."""

    async def later_event(
        self, store: Store, record: Deployment, forwarders: tuple[str, ...], at: datetime
    ) -> list[str]:
        """Insert another event of the deployment with its outbox rows (as a lifecycle
        transition would)."""
        assert isinstance(store, PostgresStore)
        command = later_command(record, forwarders, at)
        item = (command.event, record.id, record.component, command.deliveries)
        await store.engine.run(lambda conn: insert_events(conn, store.engine, [item]))
        return [d.id for d in command.deliveries]


class TestPostgresLifecycle(LifecycleContract):
    """PostgresStore passes the lifecycle contract."""


class TestPostgresFeed(FeedContract):
    """PostgresStore's feed reads behave like every other store's."""


class TestPostgresRetention(RetentionContract):
    """PostgresStore prunes like every other store."""


def test_postgresql_urls_open_a_postgres_store() -> None:
    """`postgresql://` and `postgres://` URLs select the PostgreSQL store."""
    assert isinstance(open_store("postgresql://u:p@127.0.0.1:5432/relay"), PostgresStore)
    assert isinstance(open_store("postgres://127.0.0.1/relay", pool_max=3), PostgresStore)


async def test_instances_pruning_at_once_delete_every_old_row_once(
    pg_url: str, store: PostgresStore
) -> None:
    """Two instances running every retention rule at once both finish without an error,
    and between them delete each old row exactly once."""
    for i in range(30):
        await deploy(store, f"v{i}", at=T0 + i * S, forwarders=("hook", "other"))
    await settle(store, "hook", "delivered", T0 + M)
    await settle(store, "other", "dead", T0 + M)
    await deploy(store, "latest", at=RECENT)
    other = PostgresStore(pg_url, pool_max=4)
    await other.open()
    try:
        policy = RetentionPolicy(WEEK, WEEK, WEEK, WEEK, WEEK)
        results = await asyncio.gather(drain(store, policy, 4), drain(other, policy, 4))
    finally:
        await other.close()
    total = sum((r for found in results for r in found), PruneResult())
    assert total == PruneResult(attempts=60, deliveries=60, events=30, deployments=30)
    assert await store.prune(policy, PRUNE_AT, 4) == PruneResult()


async def _analyzed(store: PostgresStore) -> bool:
    query = (
        "SELECT count(*) > 0 FROM pg_stats"
        " WHERE schemaname = current_schema() AND tablename = 'deliveries'"
    )
    return bool(await store.engine.run(lambda conn: conn.fetchval(query)))


async def test_a_relay_opening_a_young_backlog_gathers_its_planner_statistics(
    pg_url: str,
) -> None:
    """A database whose outbox holds deliveries but was never analyzed (autovacuum's
    first pass can be a minute away) is analyzed when a relay opens it, so that claims
    get the indexed plan; an empty outbox is left alone."""
    first = PostgresStore(pg_url, pool_max=2)
    await first.open()
    try:
        await first.engine.execute("ALTER TABLE deliveries SET (autovacuum_enabled = false)")
        assert not await _analyzed(first)  # nothing to analyze yet
        for i in range(3):
            await first.record(make_command(make_record("api", f"v{i}"), forwarders=("hook",)))
        assert not await _analyzed(first)
        second = PostgresStore(pg_url, pool_max=2)
        await second.open()
        await second.close()
        assert await _analyzed(first)
    finally:
        await first.close()


async def test_the_next_due_time_is_read_from_the_waiting_index(store: PostgresStore) -> None:
    """Finding when to wake up seeks the index of waiting deliveries once per forwarder,
    instead of reading every waiting delivery (a million after a long outage)."""
    from relay.store.postgres import sql

    for i in range(3):
        await store.record(make_command(make_record("api", f"v{i}"), forwarders=("hook",)))

    async def plan(conn: Any, statement: str, *params: object) -> str:
        # A table this small is read whole by choice; without that choice the plan shows
        # which index the statement can use.
        await conn.execute("SET enable_seqscan = off")
        try:
            rows = await conn.fetch("EXPLAIN " + statement, *params)
        finally:
            await conn.execute("RESET enable_seqscan")
        return "\n".join(row[0] for row in rows)

    for statement, params in ((sql.NEXT_DUE, ()), (sql.NEXT_DUE_AFTER, (T0,))):
        text = await store.engine.run(lambda c, s=statement, p=params: plan(c, s, *p))
        # A seek per forwarder, not one pass over every waiting delivery.
        assert "using deliveries_pending" in text, text
        assert "(forwarder = f.name)" in text, text
        assert "Seq Scan on deliveries" not in text, text
