"""Retention on PostgreSQL: one statement per rule, each in its own short transaction (see
postgres/sql.py); instances pruning at once take turns batch by batch."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from relay.store.postgres import sql as sql
from relay.store.postgres.engine import Conn, PgEngine
from relay.store.retention_base import PruneResult, RetentionPolicy

# In this order: attempts and deliveries first leave less for the wider rules to carry.
RULES = (
    ("attempts", sql.PRUNE_ATTEMPTS),
    ("deliveries", sql.PRUNE_DELIVERIES),
    ("events", sql.PRUNE_EVENTS),
    ("deployments", sql.PRUNE_DEPLOYMENTS),
    ("idempotency_keys", sql.PRUNE_IDEMPOTENCY_KEYS),
)


class PostgresRetention:
    """Pruning; mixed into PostgresStore, which owns `engine`."""

    engine: PgEngine

    async def prune(self, policy: RetentionPolicy, now: datetime, batch_size: int) -> PruneResult:
        """One batch of each rule of `policy` (see retention_base.py)."""
        total = PruneResult()
        for kind, statement in RULES:
            cutoff = policy.cutoff(kind, now)
            if cutoff is None:
                continue
            total += await self.engine.run(partial(_batch, statement, cutoff, batch_size))
        return total


async def _batch(statement: str, cutoff: datetime, limit: int, conn: Conn) -> PruneResult:
    async with conn.transaction():
        await conn.execute(sql.RETENTION_LOCK)
        row = await conn.fetchrow(statement, cutoff, limit)
    assert row is not None
    return PruneResult(**dict(row.items()))
