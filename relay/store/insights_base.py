"""What deploy insights (relay/insights/) ask of the store: counters for /metrics, DORA
figures, and secrets relay keeps for itself.

Counters (`deployment_totals`, `duration_histograms`) are kept by the store as
deployments become terminal (a database trigger on SQLite and PostgreSQL), so that they
only go up: pruning old rows never lowers them. A deployment counts once, under the
status it first reached a terminal state with. Stage `None` is counted as stage "".

DORA figures (`dora`) are computed by the store over a time window of finished
deployments (by `occurred_at`, i.e. their finish), with indexed queries:

- **successes**: deployments that ended `success` (rollbacks included).
- **total / failed**: deployments that ended `success` or in a failure status
  (`build-error`, `crashed-error`, `timeout-error`; cancelled ones are no change and do
  not count); failed: a failure status, or a success later reverted by a rollback.
- **lead time**: for successes with `committed_at`, finish minus commit time (never
  negative): how many, the median (the mean of the two middle values when the count is
  even) and the 90th percentile (nearest rank: the ⌈0.9·n⌉-th smallest).
- **recovery**: for each failed deployment, the time to the next successful deployment
  of the same component and stage (which may finish after the window): how many had
  one, and the median.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

TERMINAL = ("success", "build-error", "crashed-error", "timeout-error", "aborted")
FAILURES = ("build-error", "crashed-error", "timeout-error")


@dataclass(frozen=True)
class DeploymentTotal:
    """Finished deployments of a component, stage ("" for none) and terminal status, and
    when the latest of them finished."""

    component: str
    stage: str
    status: str
    count: int
    last_at: datetime


@dataclass(frozen=True)
class DurationHistogram:
    """Durations (started → finished) of a component and stage's finished deployments:
    cumulative bucket counts by upper bound (seconds, +inf last), count and sum."""

    component: str
    stage: str
    buckets: tuple[tuple[float, int], ...]
    count: int
    sum: float


@dataclass(frozen=True)
class DoraQuery:
    """The deployments DORA figures rest on: those of `stage` (every stage when None;
    stage-less deployments never count) that finished in [since, until), of `components`
    (every component when None), as one group or one group per component and stage."""

    since: datetime
    until: datetime
    stage: str | None = None
    components: tuple[str, ...] | None = None
    grouped: bool = False


@dataclass(frozen=True)
class DoraFigures:
    """The counts and times DORA figures rest on (see the module docstring); `component`
    and `stage` are None for an ungrouped query."""

    component: str | None
    stage: str | None
    successes: int = 0
    total: int = 0
    failed: int = 0
    lead_count: int = 0
    lead_median: float | None = None
    lead_p90: float | None = None
    recovery_count: int = 0
    recovery_median: float | None = None


def median(values: list[float]) -> float | None:
    """The median of `values` as the store computes it (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    n = len(ordered)
    return (ordered[(n + 1) // 2 - 1] + ordered[(n + 2) // 2 - 1]) / 2


def p90(values: list[float]) -> float | None:
    """The 90th percentile by nearest rank (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[(9 * len(ordered) + 9) // 10 - 1]


class InsightsStore(Protocol):
    """The insights side of the Store."""

    async def deployment_totals(self) -> list[DeploymentTotal]:
        """Every counter of finished deployments (one small table, no scan of deployments)."""

    async def duration_histograms(self) -> list[DurationHistogram]:
        """Every component and stage's histogram of deployment durations."""

    async def dora(self, query: DoraQuery) -> list[DoraFigures]:
        """DORA figures per group of `query` (ungrouped: exactly one, maybe all zero)."""

    async def secret(self, name: str, candidate: str) -> str:
        """The stored secret `name`; stores `candidate` first when there is none (the
        first caller wins, every other process then reads the same)."""

    async def replace_secret(self, name: str, value: str) -> None:
        """Store `value` as secret `name`, replacing any."""


def histograms(
    bounds: list[tuple[str, float]],
    buckets: list[tuple[str, str, str, int]],
    sums: list[tuple[str, str, int, float]],
) -> list[DurationHistogram]:
    """DurationHistograms from the stored rows: `bounds` (le label, seconds), bucket rows
    (component, stage, le, cumulative count; absent when 0) and sum rows (component, stage,
    count, sum)."""
    ordered = sorted(bounds, key=lambda b: b[1])
    counts = {(c, s, le): n for c, s, le, n in buckets}
    out = []
    for component, stage, count, total in sorted(sums):
        cumulative = tuple(
            (float("inf") if le == "+Inf" else seconds, counts.get((component, stage, le), 0))
            for le, seconds in ordered
        )
        out.append(DurationHistogram(component, stage, cumulative, count, round(total, 3)))
    return out


def figures(
    component: str | None,
    stage: str | None,
    counts: tuple[int, int, int],
    lead: tuple[int, float | None, float | None],
    recovery: tuple[int, float | None],
) -> DoraFigures:
    """DoraFigures from a backend's row values, times rounded to milliseconds (the
    backends' time arithmetic differs below that)."""

    def ms(value: float | None) -> float | None:
        return None if value is None else round(float(value), 3)

    return DoraFigures(
        component=component,
        stage=stage,
        successes=int(counts[0]),
        total=int(counts[1]),
        failed=int(counts[2]),
        lead_count=int(lead[0]),
        lead_median=ms(lead[1]),
        lead_p90=ms(lead[2]),
        recovery_count=int(recovery[0]),
        recovery_median=ms(recovery[1]),
    )


def dora_rows(rows: list[Any], query: DoraQuery) -> list[DoraFigures]:
    """DoraFigures from the statement's rows (read by column name)."""
    out = [
        figures(
            r["gc"] if query.grouped else None,
            r["gs"] if query.grouped else query.stage,
            (r["successes"], r["total"], r["failed"]),
            (r["lead_count"], r["lead_median"], r["lead_p90"]),
            (r["recovery_count"], r["recovery_median"]),
        )
        for r in rows
    ]
    return at_least_one(out, query)


def at_least_one(found: list[DoraFigures], query: DoraQuery) -> list[DoraFigures]:
    """`found`, or the one all-zero group an ungrouped query answers when nothing matched."""
    if not found and not query.grouped:
        return [DoraFigures(component=None, stage=query.stage)]
    return found
