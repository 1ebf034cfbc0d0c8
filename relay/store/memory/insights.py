"""Deploy insights on the in-memory store: the same counters and figures as the
databases' (rules in insights_base.py), computed in Python."""

from __future__ import annotations

from datetime import datetime

from relay.models import Deployment
from relay.store.insights_base import (
    FAILURES,
    TERMINAL,
    DeploymentTotal,
    DoraFigures,
    DoraQuery,
    DurationHistogram,
    at_least_one,
    figures,
    histograms,
    median,
    p90,
)

BOUNDS = [
    *((str(s), float(s)) for s in (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)),
    ("+Inf", float("inf")),
]
Key = tuple[str, str]


class MemoryInsights:
    """Counters and DORA figures; mixed into MemoryStore, which owns `records` and calls
    `count_finished` wherever a deployment is written (as the databases' triggers do)."""

    records: dict[str, tuple[int, Deployment]]

    def __init__(self) -> None:
        super().__init__()
        self.totals: dict[tuple[str, str, str], tuple[int, datetime]] = {}
        self.buckets: dict[tuple[str, str, str], int] = {}
        self.sums: dict[Key, tuple[int, float]] = {}
        self.secrets: dict[str, str] = {}

    def count_finished(self, before: Deployment | None, after: Deployment) -> None:
        """Count `after` if it is a deployment that just became terminal."""
        if after.kind != "deployment" or after.status.value not in TERMINAL:
            return
        if before is not None and before.status.value in TERMINAL:
            return
        key = (after.component, after.stage or "", after.status.value)
        count, last = self.totals.get(key, (0, after.occurred_at))
        self.totals[key] = (count + 1, max(last, after.occurred_at))
        if after.started_at is None:
            return
        took = max(0.0, (after.occurred_at - after.started_at).total_seconds())
        pair = (after.component, after.stage or "")
        for le, seconds in BOUNDS:
            if took <= seconds:
                self.buckets[(*pair, le)] = self.buckets.get((*pair, le), 0) + 1
        n, total = self.sums.get(pair, (0, 0.0))
        self.sums[pair] = (n + 1, total + took)

    async def deployment_totals(self) -> list[DeploymentTotal]:
        """Every counter."""
        return [DeploymentTotal(c, s, st, n, at) for (c, s, st), (n, at) in self.totals.items()]

    async def duration_histograms(self) -> list[DurationHistogram]:
        """Every histogram."""
        return histograms(
            BOUNDS,
            [(c, s, le, n) for (c, s, le), n in self.buckets.items()],
            [(c, s, n, total) for (c, s), (n, total) in self.sums.items()],
        )

    async def dora(self, query: DoraQuery) -> list[DoraFigures]:
        """The figures of each group, by the rules of insights_base.py."""
        groups: dict[Key, list[tuple[int, Deployment]]] = {}
        for seq, d in self.records.values():
            if _in_window(d, query):
                key = (d.component, d.stage or "") if query.grouped else ("", "")
                groups.setdefault(key, []).append((seq, d))
        return at_least_one(
            [self._figures(key, rows, query) for key, rows in sorted(groups.items())], query
        )

    def _figures(self, key: Key, rows: list[tuple[int, Deployment]], q: DoraQuery) -> DoraFigures:
        ok = [d for _, d in rows if d.status.value == "success"]
        failed = [(s, d) for s, d in rows if d.status.value in FAILURES or d.reverted_at]
        leads = [
            max(0.0, (d.occurred_at - d.committed_at).total_seconds())
            for d in ok
            if d.committed_at is not None
        ]
        recoveries = [t for s, d in failed if (t := self._recovery(s, d)) is not None]
        return figures(
            key[0] if q.grouped else None,
            key[1] if q.grouped else q.stage,
            (len(ok), len(rows), len(failed)),
            (len(leads), median(leads), p90(leads)),
            (len(recoveries), median(recoveries)),
        )

    def _recovery(self, seq: int, failed: Deployment) -> float | None:
        after = [
            (d.occurred_at, s)
            for s, d in self.records.values()
            if d.kind == "deployment"
            and d.status.value == "success"
            and d.component == failed.component
            and d.stage == failed.stage
            and (d.occurred_at, s) > (failed.occurred_at, seq)
        ]
        if not after:
            return None
        return max(0.0, (min(after)[0] - failed.occurred_at).total_seconds())

    async def secret(self, name: str, candidate: str) -> str:
        """The stored secret, `candidate` when there was none."""
        return self.secrets.setdefault(name, candidate)

    async def replace_secret(self, name: str, value: str) -> None:
        """Replace the secret."""
        self.secrets[name] = value


def _in_window(d: Deployment, q: DoraQuery) -> bool:
    return (
        d.kind == "deployment"
        and d.stage is not None
        and d.status.value in (*FAILURES, "success")
        and q.since <= d.occurred_at < q.until
        and (q.stage is None or d.stage == q.stage)
        and (q.components is None or d.component in q.components)
    )
