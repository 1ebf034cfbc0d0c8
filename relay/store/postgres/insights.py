"""Deploy insights on PostgreSQL: counters kept by a trigger (migration 0005), DORA figures
from one windowed query, stored secrets. The rules are in insights_base.py; the query is
SQLite's (relay/store/sqlite/insights.py) in PostgreSQL's dialect."""

from __future__ import annotations

from typing import Any

from relay.store.insights_base import (
    DeploymentTotal,
    DoraFigures,
    DoraQuery,
    DurationHistogram,
    dora_rows,
    histograms,
)
from relay.store.postgres.engine import Conn, PgEngine

TOTALS = "SELECT component, stage, status, count, last_at FROM deployment_totals"
BOUNDS = "SELECT le, seconds FROM deployment_duration_bounds"
BUCKETS = "SELECT component, stage, le, count FROM deployment_duration_buckets"
SUMS = "SELECT component, stage, count, sum FROM deployment_duration_sums"
SELECT_SECRET = "SELECT value FROM relay_secrets WHERE name = $1"
KEEP_SECRET = """
INSERT INTO relay_secrets (name, value, created_at) VALUES ($1, $2, now())
ON CONFLICT (name) DO NOTHING
"""
REPLACE_SECRET = """
INSERT INTO relay_secrets (name, value, created_at) VALUES ($1, $2, now())
ON CONFLICT (name) DO UPDATE SET value = excluded.value, created_at = excluded.created_at
"""


def _seconds(later: str, earlier: str) -> str:
    return f"greatest(0, extract(epoch FROM {later} - {earlier})::float8)"


DORA = f"""
WITH w AS (
    SELECT seq, component, stage, status, occurred_at, committed_at, reverted_at,
        {{gc}} AS gc, {{gs}} AS gs
    FROM deployments
    WHERE kind = 'deployment' AND stage IS NOT NULL AND occurred_at >= $1 AND occurred_at < $2
        AND status IN ('success', 'build-error', 'crashed-error', 'timeout-error') {{where}}
), counts AS (
    SELECT gc, gs, count(*) FILTER (WHERE status = 'success') AS successes, count(*) AS total,
        count(*) FILTER (WHERE status <> 'success' OR reverted_at IS NOT NULL) AS failed
    FROM w GROUP BY gc, gs
), lead AS (
    SELECT gc, gs, v, row_number() OVER (PARTITION BY gc, gs ORDER BY v) AS rn,
        count(*) OVER (PARTITION BY gc, gs) AS n
    FROM (SELECT gc, gs, {_seconds("occurred_at", "committed_at")} AS v FROM w
          WHERE status = 'success' AND committed_at IS NOT NULL) x
), lead_stats AS (
    SELECT gc, gs, max(n) AS n,
        avg(v) FILTER (WHERE rn IN ((n + 1) / 2, (n + 2) / 2)) AS median,
        max(v) FILTER (WHERE rn = (9 * n + 9) / 10) AS p90
    FROM lead GROUP BY gc, gs
), recovered AS (
    SELECT gc, gs, {_seconds("nxt", "occurred_at")} AS v FROM (
        SELECT f.gc, f.gs, f.occurred_at, (
            SELECT s.occurred_at FROM deployments s
            WHERE s.kind = 'deployment' AND s.status = 'success'
                AND s.component = f.component AND s.stage = f.stage
                AND (s.occurred_at, s.seq) > (f.occurred_at, f.seq)
            ORDER BY s.occurred_at, s.seq LIMIT 1
        ) AS nxt
        FROM w f WHERE f.status <> 'success' OR f.reverted_at IS NOT NULL
    ) y WHERE nxt IS NOT NULL
), recovery AS (
    SELECT gc, gs, v, row_number() OVER (PARTITION BY gc, gs ORDER BY v) AS rn,
        count(*) OVER (PARTITION BY gc, gs) AS n
    FROM recovered
), recovery_stats AS (
    SELECT gc, gs, max(n) AS n,
        avg(v) FILTER (WHERE rn IN ((n + 1) / 2, (n + 2) / 2)) AS median
    FROM recovery GROUP BY gc, gs
)
SELECT c.gc, c.gs, c.successes, c.total, c.failed,
    coalesce(l.n, 0) AS lead_count, l.median AS lead_median, l.p90 AS lead_p90,
    coalesce(r.n, 0) AS recovery_count, r.median AS recovery_median
FROM counts c
LEFT JOIN lead_stats l ON l.gc = c.gc AND l.gs = c.gs
LEFT JOIN recovery_stats r ON r.gc = c.gc AND r.gs = c.gs
ORDER BY c.gc, c.gs
"""


def dora_statement(query: DoraQuery) -> tuple[str, list[Any]]:
    """The DORA statement and its parameters for `query`."""
    params: list[Any] = [query.since, query.until]
    where = ""
    if query.stage is not None:
        params.append(query.stage)
        where += f" AND stage = ${len(params)}"
    if query.components is not None:
        params.append(list(query.components))
        where += f" AND component = ANY(${len(params)}::text[])"
    gc, gs = ("component", "stage") if query.grouped else ("''::text", "''::text")
    return DORA.format(gc=gc, gs=gs, where=where), params


class PostgresInsights:
    """Insights queries; mixed into PostgresStore, which owns `engine`."""

    engine: PgEngine

    async def deployment_totals(self) -> list[DeploymentTotal]:
        """Every counter row (a small table: one row per component, stage and status)."""
        rows = await self.engine.fetch(TOTALS)
        return [DeploymentTotal(r[0], r[1], r[2], int(r[3]), r[4]) for r in rows]

    async def duration_histograms(self) -> list[DurationHistogram]:
        """The histograms, from the bounds, bucket and sum tables."""

        async def op(conn: Conn) -> list[DurationHistogram]:
            bounds = [(r[0], float(r[1])) for r in await conn.fetch(BOUNDS)]
            buckets = [(r[0], r[1], r[2], int(r[3])) for r in await conn.fetch(BUCKETS)]
            sums = [(r[0], r[1], int(r[2]), float(r[3])) for r in await conn.fetch(SUMS)]
            return histograms(bounds, buckets, sums)

        return await self.engine.run(op)

    async def dora(self, query: DoraQuery) -> list[DoraFigures]:
        """One windowed query (see DORA)."""
        statement, params = dora_statement(query)
        return dora_rows(await self.engine.fetch(statement, *params), query)

    async def secret(self, name: str, candidate: str) -> str:
        """Read it; keep `candidate` first when none is stored."""
        found = await self.engine.fetchrow(SELECT_SECRET, name)
        if found is not None:
            return str(found[0])

        async def op(conn: Conn) -> str:
            async with conn.transaction():
                await conn.execute(KEEP_SECRET, name, candidate)
                return str(await conn.fetchval(SELECT_SECRET, name))

        return await self.engine.run(op)

    async def replace_secret(self, name: str, value: str) -> None:
        """Store `value`, replacing any."""
        await self.engine.execute(REPLACE_SECRET, name, value)
