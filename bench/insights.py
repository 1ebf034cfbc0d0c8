"""Insights: the DORA answer time and the cost of a /metrics scrape on a SQLite store of
10,000 and 100,000 deployments.

Run it with every other benchmark (`make bench`) or alone
(`.venv/bin/python bench/run.py insights`; `--quick` measures the 10,000 store only).

Each store is a fresh SQLite file in TMPDIR, migrated by relay, then filled in bulk
(the insert triggers keep the /metrics counters as they do for ingest): 100
components x 2 stages, deployments spread evenly over the last 365 days, one in six a
failure, four in five with a commit time, every one with a start time. Measured, each
the median of `--rounds` rounds (at least 5):

- **dora 30d**: `GET /insights/dora` for every component of `production` over 30 days
  (the use case InsightsService.dora: the store's windowed query and the answer), goal
  under 200 ms at 100,000 deployments;
- **dora 365d**: the same over 365 days, i.e. every deployment of the stage in the window
  (the worst case, reported only);
- **scrape**: one uncached read of the deployment series (counters, histograms, live
  versions, grouped DORA figures) and their rendering in the exposition format (the
  work a /metrics scrape adds every `metrics.cache_seconds`), goal under 200 ms.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from datetime import timedelta
from pathlib import Path
from statistics import median
from tempfile import TemporaryDirectory

from _harness import Options, Result

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import CollectorRegistry, generate_latest

from relay.auth import Principal
from relay.insights.deployment_metrics import DeploymentMetrics, MetricsConfig
from relay.insights.service import BadgeConfig, InsightsService
from relay.store.sqlite import sql
from relay.store.sqlite.store import SqliteStore
from relay.timeutil import format_db, utcnow

SIZES = (10_000, 100_000)
COMPONENTS, STAGES = 100, ("production", "staging")
READER = Principal("bench", frozenset({"events:read"}), ("*",))


def fill(path: Path, count: int) -> None:
    """`count` deployments spread over the last 365 days, inserted in bulk."""
    now = utcnow()
    step = timedelta(days=365) / count
    rows = []
    for i in range(count):
        finished = now - timedelta(days=365) + i * step
        status = "build-error" if i % 6 == 5 else "success"
        stamp = format_db(finished)
        committed = format_db(finished - timedelta(minutes=30 + i % 600)) if i % 5 else None
        started = format_db(finished - timedelta(seconds=30 + i % 900))
        component = f"svc-{i % COMPONENTS:03d}"
        stage = STAGES[(i // COMPONENTS) % 2]
        result = "success" if status == "success" else "failure"
        identity = (f"bench-{i}", "deployment", component, f"v{i}", result, status, stage)
        times = (started, stamp, None, None, None, "{}", "bench", stamp, stamp, stamp, committed)
        rows.append((*identity, None, None, *times))
    with sqlite3.connect(path) as conn:
        conn.executemany(
            sql.INSERT_COMPONENT,
            [(f"svc-{c:03d}", format_db(now)) for c in range(COMPONENTS)],
        )
        conn.executemany(sql.INSERT_DEPLOYMENT, rows)
        conn.execute("ANALYZE")


async def measure(path: Path, rounds: int) -> dict[str, list[float]]:
    """Milliseconds of each operation, per round."""
    store = SqliteStore(path)
    await store.open()
    try:
        service = InsightsService(store, BadgeConfig())
        metrics = DeploymentMetrics(store, MetricsConfig(cache_seconds=0))
        registry = CollectorRegistry()
        registry.register(metrics)
        out: dict[str, list[float]] = {"dora 30d": [], "dora 365d": [], "scrape": []}
        for _ in range(rounds + 1):  # the first round warms the page cache
            for name, days in (("dora 30d", 30), ("dora 365d", 365)):
                started = time.perf_counter()
                await service.dora(READER, None, "production", days)
                out[name].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await metrics.refresh()
            generate_latest(registry)
            out["scrape"].append((time.perf_counter() - started) * 1000)
        return {name: values[1:] for name, values in out.items()}
    finally:
        await store.close()


def run(opts: Options) -> list[Result]:
    """Fill each store, then time the DORA answer and a scrape on it."""
    rounds = max(opts.rounds, 5)
    results = []
    for count in SIZES[:1] if opts.quick else SIZES:
        with TemporaryDirectory(prefix="relay-bench-insights-") as tmp:
            path = Path(tmp) / "relay.db"
            asyncio.run(SqliteStore(path).open())  # migrated, then closed at exit
            fill(path, count)
            figures = asyncio.run(measure(path, rounds))
        for name, values in figures.items():
            results.append(
                Result(
                    benchmark="insights",
                    metric=f"{name} ms, {count:,} deployments",
                    relay=values,
                    baseline=[],
                    target=None if name == "dora 365d" else 200.0,
                    higher_is_better=False,
                    notes=[f"median of {rounds} rounds: {median(values):.1f} ms"],
                )
            )
    return results
