"""Deploy insights on SQLite: counters kept by triggers (migration 0007), DORA figures
from one windowed query, stored secrets. The rules are in insights_base.py."""

from __future__ import annotations

import sqlite3
from typing import Any

from relay.store.insights_base import (
    DeploymentTotal,
    DoraFigures,
    DoraQuery,
    DurationHistogram,
    dora_rows,
    histograms,
)
from relay.store.sqlite.engine import SqliteEngine
from relay.timeutil import format_db, parse_db, utcnow

TOTALS = "SELECT component, stage, status, count, last_at FROM deployment_totals"
BOUNDS = "SELECT le, seconds FROM deployment_duration_bounds"
BUCKETS = "SELECT component, stage, le, count FROM deployment_duration_buckets"
SUMS = "SELECT component, stage, count, sum FROM deployment_duration_sums"
SELECT_SECRET = "SELECT value FROM relay_secrets WHERE name = ?"
KEEP_SECRET = "INSERT OR IGNORE INTO relay_secrets (name, value, created_at) VALUES (?, ?, ?)"
REPLACE_SECRET = """
INSERT INTO relay_secrets (name, value, created_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, created_at = excluded.created_at
"""


def _seconds(later: str, earlier: str) -> str:
    return f"max(0, (julianday({later}) - julianday({earlier})) * 86400)"


# {where} narrows the window by stage and components; {gc}/{gs} are the group columns
# (the component and stage, or '' for one group). Each time is ranked in SQL: only the
# counts, medians and percentiles come back. The next success of a failed deployment is
# one step on an index. (`+stage`: that test must not pick the stage index for a window.)
DORA = f"""
WITH w AS (
    SELECT seq, component, stage, status, occurred_at, committed_at, reverted_at,
        {{gc}} AS gc, {{gs}} AS gs
    FROM deployments
    WHERE kind = 'deployment' AND +stage IS NOT NULL AND occurred_at >= ? AND occurred_at < ?
        AND status IN ('success', 'build-error', 'crashed-error', 'timeout-error') {{where}}
), counts AS (
    SELECT gc, gs, sum(status = 'success') AS successes, count(*) AS total,
        sum(status <> 'success' OR reverted_at IS NOT NULL) AS failed
    FROM w GROUP BY gc, gs
), lead AS (
    SELECT gc, gs, v, row_number() OVER (PARTITION BY gc, gs ORDER BY v) AS rn,
        count(*) OVER (PARTITION BY gc, gs) AS n
    FROM (SELECT gc, gs, {_seconds("occurred_at", "committed_at")} AS v FROM w
          WHERE status = 'success' AND committed_at IS NOT NULL)
), lead_stats AS (
    SELECT gc, gs, max(n) AS n,
        avg(CASE WHEN rn IN ((n + 1) / 2, (n + 2) / 2) THEN v END) AS median,
        max(CASE WHEN rn = (9 * n + 9) / 10 THEN v END) AS p90
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
    ) WHERE nxt IS NOT NULL
), recovery AS (
    SELECT gc, gs, v, row_number() OVER (PARTITION BY gc, gs ORDER BY v) AS rn,
        count(*) OVER (PARTITION BY gc, gs) AS n
    FROM recovered
), recovery_stats AS (
    SELECT gc, gs, max(n) AS n,
        avg(CASE WHEN rn IN ((n + 1) / 2, (n + 2) / 2) THEN v END) AS median
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
    params: list[Any] = [format_db(query.since), format_db(query.until)]
    where = ""
    if query.stage is not None:
        where += " AND stage = ?"
        params.append(query.stage)
    if query.components is not None:
        where += f" AND component IN ({', '.join('?' * len(query.components))})"
        params.extend(query.components)
    gc, gs = ("component", "stage") if query.grouped else ("''", "''")
    return DORA.format(gc=gc, gs=gs, where=where), params


class SqliteInsights:
    """Insights queries; mixed into SqliteStore, which owns `engine`."""

    engine: SqliteEngine

    async def deployment_totals(self) -> list[DeploymentTotal]:
        """Every counter row (a small table: one row per component, stage and status)."""

        def op(conn: sqlite3.Connection) -> list[DeploymentTotal]:
            return [
                DeploymentTotal(r[0], r[1], r[2], r[3], parse_db(r[4]))
                for r in conn.execute(TOTALS)
            ]

        return await self.engine.read(op)

    async def duration_histograms(self) -> list[DurationHistogram]:
        """The histograms, from the bounds, bucket and sum tables."""

        def op(conn: sqlite3.Connection) -> list[DurationHistogram]:
            return histograms(
                [tuple(r) for r in conn.execute(BOUNDS)],
                [tuple(r) for r in conn.execute(BUCKETS)],
                [tuple(r) for r in conn.execute(SUMS)],
            )

        return await self.engine.read(op)

    async def dora(self, query: DoraQuery) -> list[DoraFigures]:
        """One windowed query (see DORA)."""
        statement, params = dora_statement(query)

        def op(conn: sqlite3.Connection) -> list[DoraFigures]:
            return dora_rows(conn.execute(statement, params).fetchall(), query)

        return await self.engine.read(op)

    async def secret(self, name: str, candidate: str) -> str:
        """Read it; keep `candidate` only when none is stored (through the writer)."""

        def read(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(SELECT_SECRET, (name,)).fetchone()
            return None if row is None else str(row[0])

        found = await self.engine.read(read)
        if found is not None:
            return found

        def keep(conn: sqlite3.Connection) -> str:
            conn.execute(KEEP_SECRET, (name, candidate, format_db(utcnow())))
            return str(conn.execute(SELECT_SECRET, (name,)).fetchone()[0])

        return await self.engine.write(keep)

    async def replace_secret(self, name: str, value: str) -> None:
        """Store `value`, replacing any."""
        await self.engine.write(
            lambda conn: conn.execute(REPLACE_SECRET, (name, value, format_db(utcnow())))
        )
