"""Deployment series of `/metrics`, derived from the store so that every instance answers
the same and a restart changes nothing.

A scrape reads a few small things: the counter table (one row per component, stage and
status), the duration histograms, one index probe per series for the live version, and
one windowed query for the DORA figures. The result is kept for `cache_seconds`, and
concurrent scrapes share one refresh. At most `max_series` component/stage pairs are
exported, the most recently deployed; `relay_deployment_series_left_out` says how many
were not.

These names are a public contract (dashboards and alerts use them); the README lists them.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from relay.errors import RelayError
from relay.store.base import Store
from relay.store.insights_base import DeploymentTotal, DoraFigures, DoraQuery, DurationHistogram
from relay.timeutil import utcnow

log = structlog.get_logger("relay.insights")
Pair = tuple[str, str]
PAIR = ["component", "stage"]
# The DORA series: name, help, and the figure each shows (None leaves the series out).
DORA_SERIES: tuple[tuple[str, str, Callable[[DoraFigures, float], float | None]], ...] = (
    (
        "relay_dora_deployment_frequency_per_day",
        "Successful deployments a day over the DORA window.",
        lambda f, days: f.successes / days if f.total else None,
    ),
    (
        "relay_dora_lead_time_median_seconds",
        "Median change lead time (commit to successful deployment) over the DORA window.",
        lambda f, days: f.lead_median,
    ),
    (
        "relay_dora_lead_time_p90_seconds",
        "90th percentile change lead time over the DORA window.",
        lambda f, days: f.lead_p90,
    ),
    (
        "relay_dora_change_failure_rate",
        "Share of deployments that failed or were rolled back, over the DORA window.",
        lambda f, days: f.failed / f.total if f.total else None,
    ),
    (
        "relay_dora_recovery_time_median_seconds",
        "Median time from a failed deployment to the next success, over the DORA window.",
        lambda f, days: f.recovery_median,
    ),
)


@dataclass(frozen=True)
class MetricsConfig:
    """`[metrics]` settings, passed in by the app."""

    max_series: int = 1000
    dora_window: timedelta = timedelta(days=30)
    cache_seconds: float = 5.0


@dataclass(frozen=True)
class Snapshot:
    """What one refresh read, already cut to the exported pairs."""

    totals: list[DeploymentTotal] = field(default_factory=list)
    histograms: list[DurationHistogram] = field(default_factory=list)
    live: dict[Pair, str] = field(default_factory=dict)
    dora: list[DoraFigures] = field(default_factory=list)
    left_out: int = 0
    window_days: float = 30.0


def kept_pairs(totals: list[DeploymentTotal], limit: int) -> tuple[set[Pair], int]:
    """The `limit` most recently deployed pairs, and how many others there are."""
    last: dict[Pair, datetime] = {}
    for t in totals:
        key = (t.component, t.stage)
        last[key] = max(last.get(key, t.last_at), t.last_at)
    ranked = sorted(last, key=lambda k: (last[k], k), reverse=True)
    return set(ranked[:limit]), max(0, len(ranked) - limit)


async def take_snapshot(store: Store, config: MetricsConfig, now: datetime) -> Snapshot:
    """Read everything the deployment series show."""
    totals = await store.deployment_totals()
    kept, left_out = kept_pairs(totals, config.max_series)
    keys = [(c, s or None) for c, s in sorted(kept)]  # stage "" is no stage
    live_ids = await store.live_ids(keys)
    records = await store.deployments_by_ids(list(live_ids.values()))
    live = {(c, s or ""): records[i].version for (c, s), i in live_ids.items() if i in records}
    figures = await store.dora(DoraQuery(now - config.dora_window, now, grouped=True))
    return Snapshot(
        totals=[t for t in totals if (t.component, t.stage) in kept],
        histograms=[h for h in await store.duration_histograms() if (h.component, h.stage) in kept],
        live=live,
        dora=[f for f in figures if (f.component or "", f.stage or "") in kept],
        left_out=left_out,
        window_days=config.dora_window.total_seconds() / 86400,
    )


class DeploymentMetrics(Collector):
    """A prometheus_client collector of the latest snapshot, refreshed at scrape time."""

    def __init__(
        self, store: Store, config: MetricsConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store, self.config, self.clock = store, config, clock
        self.snapshot = Snapshot(window_days=config.dora_window.total_seconds() / 86400)
        self._taken_at: float | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        """Read the store unless the snapshot is younger than `cache_seconds`; a store
        that fails leaves the previous snapshot (the scrape still answers)."""
        async with self._lock:
            now = self.clock()
            if self._taken_at is not None and now - self._taken_at < self.config.cache_seconds:
                return
            try:
                self.snapshot = await take_snapshot(self.store, self.config, utcnow())
            except RelayError as exc:
                log.warning("deployment_metrics_unavailable", error=exc.message)
                return
            self._taken_at = now

    def collect(self) -> Iterator[Metric]:
        """The deployment series of the snapshot."""
        snap = self.snapshot
        total = CounterMetricFamily(
            "relay_deployments",
            "Finished deployments by terminal status (kept by the store; never lowered by "
            "retention).",
            labels=[*PAIR, "status"],
        )
        last = GaugeMetricFamily(
            "relay_deployment_last_timestamp_seconds",
            "When the latest finished deployment finished (Unix time).",
            labels=PAIR,
        )
        last_ok = GaugeMetricFamily(
            "relay_deployment_last_success_timestamp_seconds",
            "When the latest successful deployment finished (Unix time).",
            labels=PAIR,
        )
        latest: dict[Pair, float] = {}
        for t in sorted(snap.totals, key=lambda t: (t.component, t.stage, t.status)):
            total.add_metric([t.component, t.stage, t.status], t.count)
            key, ts = (t.component, t.stage), t.last_at.timestamp()
            latest[key] = max(latest.get(key, ts), ts)
            if t.status == "success":
                last_ok.add_metric(list(key), ts)
        for key, ts in sorted(latest.items()):
            last.add_metric(list(key), ts)
        yield from (total, last, last_ok)
        info = GaugeMetricFamily(
            "relay_deployment_info",
            "The live version of each component and stage (value 1).",
            labels=[*PAIR, "version"],
        )
        for (component, stage), version in sorted(snap.live.items()):
            info.add_metric([component, stage, version], 1)
        yield info
        yield self._durations(snap)
        yield from self._dora(snap)
        yield GaugeMetricFamily(
            "relay_deployment_series_left_out",
            "Component/stage pairs not exported because of metrics.max_series.",
            value=snap.left_out,
        )

    @staticmethod
    def _durations(snap: Snapshot) -> Metric:
        family = HistogramMetricFamily(
            "relay_deployment_duration_seconds",
            "Durations of finished deployments, started to finished.",
            labels=PAIR,
        )
        for h in sorted(snap.histograms, key=lambda h: (h.component, h.stage)):
            buckets = [("+Inf" if math.isinf(le) else repr(le), n) for le, n in h.buckets]
            family.add_metric([h.component, h.stage], buckets, h.sum)
        return family

    @staticmethod
    def _dora(snap: Snapshot) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "relay_dora_window_seconds",
            "The window the relay_dora_* series are computed over (metrics.dora_window).",
            value=snap.window_days * 86400,
        )
        for name, help_text, value in DORA_SERIES:
            family = GaugeMetricFamily(name, help_text, labels=PAIR)
            for f in snap.dora:
                found = value(f, snap.window_days)
                if found is not None:
                    family.add_metric([f.component or "", f.stage or ""], found)
            yield family
