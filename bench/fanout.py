"""Fan-out, latency and isolation of deliveries: relay's dispatcher against local sinks.

Run it with every other benchmark (`make bench`, i.e. `.venv/bin/python bench/run.py`)
or alone (`.venv/bin/python bench/run.py fanout`, `--quick` for a smaller backlog).

Targets are 5 webhook forwarders, each to its own port of bench/_sink_server.py (one
process that answers 200 at once, counts, and notes when each request arrived), plus
one port that accepts and never answers. Three figures, each from interleaved rounds:

- fanout: relay serves with `--no-dispatch` while 20,000 events are posted (100,000
  pending deliveries), then `relay worker --processes 2` (RELAY_BENCH_PROCESSES) drains
  that SQLite file into the sinks, the forwarders' concurrency split between its
  processes (still 5 x 8 connections in all). The drain is cut into as many segments
  as there are rounds (the worker is stopped with SIGTERM once a segment's share has
  arrived, and started again on the same file for the next), interleaved with rounds
  of the baseline: bench/_pyload.py, a bare aiohttp ClientSession in its own process,
  posting a body of the same size to the same sinks over the same number of
  connections (5 forwarders x `concurrency`). Both rates are
  taken by the sinks, first to last arrival, so process start-up counts for neither.
  After the last segment every delivery must be `delivered` in the database.
- latency: a fresh `relay serve` per round gets 200 events/s (bench/_paced_client.py,
  open loop); each delivery's latency is its arrival at the sink (`time.time()` in the
  sink) minus the moment the client had read the 201 (`time.time()` in the client),
  matched by deployment id (`data.id` of the webhook envelope, `id` of the 201).
  No baseline: p99 is judged against the issue's 50 ms. Percentiles are taken over
  the samples of all rounds of a kind together (each round's own is in the notes).
  A latency can be below zero: deliveries start at the commit, the 201 waits for the
  fsync after it.
- isolation: the same, with the 5th forwarder pointed at the hanging port (2 s
  timeout); the p99 of the 4 healthy forwarders against their p99 in the all-healthy
  rounds of the latency figure, which alternate with these. The all-healthy rounds
  also carry the 5th forwarder's deliveries, which a hanging target soon stops costing
  (its circuit opens), so a third kind of round, the 4 forwarders alone, is the
  control quoted in the notes: what the hanging target itself costs the others.

The fan-out figure is also measured on PostgreSQL (bench/_pg.py: a durable throwaway
server), with one and with three `relay worker` processes on one database. Each of
those rounds starts from a fresh database (dropped and created), filled by `relay serve
--no-dispatch` with a backlog of 2,000 events x 5 forwarders (800 with --quick; a SQLite
segment is 6,667, but 2 x 3 of those would double the time), which the workers, started together,
then drain completely; the sinks time it the same way, and every delivery must then be
`delivered`. These rounds rotate with the SQLite segments and the baseline rounds, and
each ratio is against the same baseline rounds. Without PostgreSQL the PG rows are left
out, and the fan-out row's notes say why.

The longest part is relay's drain; `--quick` makes the backlog 4,000 events, and at
most 3 rounds are run whatever `--rounds` says.
"""

from __future__ import annotations

import base64
import json
import math
import os
import resource
import secrets
import sqlite3
import sys
import time
import urllib.request
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import median
from tempfile import TemporaryDirectory
from typing import Any, Literal, TypeVar

from _harness import (
    BENCH_DIR,
    PYLOAD,
    BenchError,
    Options,
    Result,
    Server,
    Together,
    Worker,
    event_load,
    filesystem_of,
    free_port,
    free_ports,
    relay_command,
    relay_source,
    require_status,
    run_helper,
    write_config,
)
from _pg import POOL, Postgres, postgres, skipped

NAME = "fanout"
FANOUT_TARGET = 0.6  # relay / bare client, from the issue
P99_BUDGET_MS = 50.0  # 201 → sink, from the issue
ISOLATION_TARGET = 1.2  # healthy p99 with one target hanging / with none, from the issue
FORWARDERS = 5
CONCURRENCY = 8  # sends in flight per forwarder: relay's default
# SQLite drain: `relay worker --processes`, the forwarders' concurrency split between them
# (still FORWARDERS x CONCURRENCY connections in all, as the baseline has).
PROCESSES = int(os.environ.get("RELAY_BENCH_PROCESSES", "2"))
TIMEOUT = "2s"  # per request: what ends a send to the hanging target
BACKLOG_EVENTS = 20_000  # the backlog: x 5 forwarders = 100,000 deliveries
QUICK_BACKLOG_EVENTS = 4_000
# A PostgreSQL round fills a fresh database and drains all of it: smaller than a SQLite
# segment (6,667 events), or the 2 x 3 of them would double the benchmark's time.
PG_ROUND_EVENTS = 2_000  # x 5 forwarders = 10,000 deliveries a round
QUICK_PG_ROUND_EVENTS = 800
# The drain takes relay 60-85 s on 2 cores however it is cut; with more latency rounds
# than this the benchmark would pass 3 minutes.
MAX_ROUNDS = 3
MIN_DRAIN_RATE = 100.0  # deliveries/s; only bounds a drain that hangs
LATENCY_RATE = 200.0  # events/s offered
# Measured per kind of round, split over LATENCY_ROUNDS rounds of each kind (whatever
# --rounds says), interleaved so that drift of the machine hits every kind alike; the
# percentiles pool the rounds (60,000 samples per kind), so that one stall of the
# shared machine, which sets the p99 of the round it falls in, does not set the figure.
LATENCY_SECONDS = 60.0
LATENCY_ROUNDS = 10
LATENCY_WARMUP_S = 1.0  # fresh connections to the sinks, cold SQLite cache: not measured
ARRIVAL_GRACE_S = 5.0  # after the last 201, how long deliveries may still arrive
SECRET = "whsec_" + base64.b64encode(b"relay-bench-fanout-signing-key-1").decode()
# Headers aiohttp's client computes for each request itself.
SET_BY_CLIENT = frozenset({"host", "content-length"})
SINK_SERVER = BENCH_DIR / "_sink_server.py"
PACED_CLIENT = BENCH_DIR / "_paced_client.py"

T = TypeVar("T")
# Latency rounds: 5 healthy forwarders; the 5th pointed at the hanging port instead;
# the 5th left out (the control: what the 4 get when there is no 5th at all).
Kind = Literal["healthy", "hanging", "four"]
KINDS: tuple[Kind, ...] = ("healthy", "hanging", "four")


@dataclass(frozen=True)
class Plan:
    events: int  # in the backlog
    rounds: int
    quick: bool
    pg_events: int  # in each PostgreSQL round's backlog

    @property
    def deliveries(self) -> int:
        return self.events * FORWARDERS

    @classmethod
    def of(cls, opts: Options) -> Plan:
        events = QUICK_BACKLOG_EVENTS if opts.quick else BACKLOG_EVENTS
        pg_events = QUICK_PG_ROUND_EVENTS if opts.quick else PG_ROUND_EVENTS
        return cls(events, max(1, min(opts.rounds, MAX_ROUNDS)), opts.quick, pg_events)


@dataclass(frozen=True)
class SinkStats:
    """What the sinks saw since their last reset."""

    count: int
    first: float | None
    last: float | None
    busy: float
    body_bytes: int
    hang_connections: int

    @property
    def rate(self) -> float:
        """Arrivals per second; N arrivals span N - 1 intervals from first to last."""
        if self.first is None or self.last is None or self.last <= self.first:
            raise BenchError(f"the sinks saw {self.count} requests: too few to time")
        return (self.count - 1) / (self.last - self.first)

    @property
    def mean_body(self) -> float:
        return self.body_bytes / max(self.count, 1)

    @property
    def busy_us(self) -> float:
        """Time in the sinks' own handler per request, in microseconds."""
        return self.busy / max(self.count, 1) * 1e6


class Sinks:
    """The sink process: FORWARDERS answering ports and one hanging port."""

    def __init__(self, work: Path) -> None:
        self.control, self.hang, *self.ports = free_ports(FORWARDERS + 2)
        argv = [sys.executable, str(SINK_SERVER), str(self.control)]
        argv += ["--ports", *map(str, self.ports), "--hang", str(self.hang)]
        self.server = Server("sinks", argv, self.control, work)

    @staticmethod
    def url(port: int) -> str:
        return f"http://127.0.0.1:{port}/hook"

    def _call(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.control}{path}", method=method)
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.loads(resp.read())

    def reset(self) -> None:
        self._call("/reset", "POST")

    def stats(self) -> SinkStats:
        data = self._call("/stats")
        return SinkStats(
            data["count"],
            data["first"],
            data["last"],
            data["busy"],
            data["body_bytes"],
            data["hang_connections"],
        )

    def sample(self) -> dict[str, str]:
        """Head and body of the first request since the last reset."""
        sample: dict[str, str] | None = self._call("/sample")
        if sample is None:
            raise BenchError("the sinks have no request to copy")
        return sample

    def arrivals(self) -> list[tuple[int, str, float]]:
        return [(port, ident, at) for port, ident, at in self._call("/arrivals")]

    def wait_for(self, count: int, timeout: float, sender: Server | Together) -> bool:
        """Whether `count` requests arrived within `timeout` s (while `sender` runs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stats().count >= count:
                return True
            sender.check_alive()
            time.sleep(0.05)
        return False


@dataclass(frozen=True)
class Drained:
    """One round of the fan-out figure: what the sinks saw, and the sender's CPU time."""

    sink: SinkStats
    cpu: float  # user + system seconds of the sending process, start-up included


@dataclass(frozen=True)
class LatencyRound:
    """One latency round: ms from 201 to arrival, per sink port, of the measured events."""

    kind: Kind
    latencies: dict[int, list[float]]
    missing: int
    sink: SinkStats
    behind: float  # the paced client's worst lag behind its schedule, in s
    timed_out: int  # attempts to the hanging target that ended in its timeout

    def percentile(self, q: float, ports: Sequence[int] | None = None) -> float:
        values = [v for p in ports or self.latencies for v in self.latencies[p]]
        return percentile(values, q)


# `relay worker` processes on one PostgreSQL database, one figure each.
PG_WORKERS = (1, 3)


def run(opts: Options) -> list[Result]:
    """The fan-out drain against the bare client, then latency and isolation rounds."""
    plan = Plan.of(opts)
    load_before, source = os.getloadavg()[0], relay_source()
    with TemporaryDirectory(prefix="relay-bench-fanout-") as tmp:
        work = Path(tmp)
        sinks = Sinks(work)
        with sinks.server:
            # PostgreSQL runs only while its rounds do: the latency rounds are SQLite's.
            with postgres() as pg:
                drains = [
                    PgDrain(n, pg, work, sinks) for n in PG_WORKERS if isinstance(pg, Postgres)
                ]
                fanout = _throughput(opts, plan, work, sinks, drains)
                about = pg.describe() if isinstance(pg, Postgres) else skipped(pg)
                pg_results = [d.result(opts, plan, fanout, about) for d in drains]
            latency = _latency_rounds(plan, work, sinks)
        fs = filesystem_of(work)
    fanout.notes.extend(
        [
            f"SQLite file on {fs}{' (tmpfs: fsync is free)' if fs == 'tmpfs' else ''}",
            "PostgreSQL: the rows below" if drains else about,
            # Everything here shares the CPUs with whatever else runs: say how busy they were.
            f"load average (1 min) {load_before:.2f} at start, {os.getloadavg()[0]:.2f} at the "
            f"end, on {os.cpu_count()} CPUs",
            f"relay measured: {source}" + _changed(source),
        ]
    )
    if not drains:
        fanout = replace(fanout, skipped=[about])
    return [fanout, *pg_results, *_latency_results(plan, sinks, latency)]


def _changed(source: str) -> str:
    if relay_source() == source:
        return ""
    return " (they changed during the run: the figures may mix two versions)"


# -- fan-out throughput ----------------------------------------------------------------


def _throughput(
    opts: Options, plan: Plan, work: Path, sinks: Sinks, drains: list[PgDrain]
) -> Result:
    config, db = work / "fanout.toml", work / "backlog.db"
    fill_rate = _fill_backlog(opts, plan, config, db, sinks)
    spec: dict[str, Any] = {}
    relay: list[Drained] = []
    baseline: list[Drained] = []
    sizes = _split(plan.deliveries, plan.rounds)
    pg = {d.name: d for d in drains}
    for i, size in enumerate(sizes):
        # The baseline copies relay's request: relay (SQLite) goes first in the first round.
        for who in _order(i, ("relay", "baseline", *pg)):
            if who in pg:
                pg[who].round(opts, plan.pg_events)
                continue
            if who == "baseline":
                baseline.append(_baseline_round(spec, sinks, size))
                continue
            # The last segment drains whatever the earlier ones (which overshoot by
            # the sends in flight at SIGTERM) left.
            delivered = sum(r.sink.count for r in relay)
            want = size if i < len(sizes) - 1 else plan.deliveries - delivered
            relay.append(_drain_segment(work, config, sinks, want))
            spec = spec or _baseline_spec(sinks)  # relay goes first in the first round
    duplicates = _check_drained(db, plan, sum(r.sink.count for r in relay))
    return Result(
        benchmark=NAME,
        metric=f"deliveries/s draining {plan.deliveries:,}, SQLite",
        relay=[r.sink.rate for r in relay],
        baseline=[r.sink.rate for r in baseline],
        target=FANOUT_TARGET,
        notes=_fanout_notes(opts, plan, fill_rate, relay, baseline, duplicates),
    )


class PgDrain:
    """The fan-out drain on PostgreSQL with `workers` `relay worker` processes: per round
    a fresh database, a backlog filled by `relay serve --no-dispatch`, drained whole."""

    def __init__(self, workers: int, pg: Postgres, work: Path, sinks: Sinks) -> None:
        self.workers, self.pg, self.work, self.sinks = workers, pg, work, sinks
        self.database = f"bench_fanout_{workers}"
        self.drained: list[Drained] = []
        self.fill_rates: list[float] = []
        self.duplicates = 0
        self.analyzed = 0  # rounds in which autovacuum had analyzed deliveries

    @property
    def name(self) -> str:
        return f"relay-pg{self.workers}"

    def round(self, opts: Options, events: int) -> None:
        url = self.pg.fresh(self.database)
        config = self.work / f"{self.name}.toml"
        port, token = free_port(), _token()
        targets = [self.sinks.url(p) for p in self.sinks.ports]
        write_config(
            config, db=url, port=port, token=token, forwarders=_forwarders(targets), storage=POOL
        )
        self.sinks.reset()
        self._fill(opts, config, port, token, events)
        if self.sinks.stats().count:
            raise BenchError(f"{self.name}: relay delivered while serving with --no-dispatch")
        want = events * FORWARDERS
        cpu = _children_cpu()
        argv = [*relay_command(), "worker", "--config", str(config)]
        workers = [
            Worker(f"{self.name}-worker-{k}", argv, self.work, ready="worker_started")
            for k in range(1, self.workers + 1)
        ]
        with Together(workers) as group:
            if not self.sinks.wait_for(want, 30 + want / MIN_DRAIN_RATE, group):
                raise BenchError(f"{self.name} delivered {self.sinks.stats().count} of {want}")
            group.stop_cleanly()
        drained = Drained(self.sinks.stats(), _children_cpu() - cpu)
        delivered = self._scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'delivered'")
        if delivered != want:
            raise BenchError(f"{self.name}: {delivered} of {want} deliveries are delivered")
        if drained.sink.count < delivered:
            raise BenchError(f"{self.name}: the sinks saw {drained.sink.count} of {delivered}")
        self.duplicates += drained.sink.count - delivered
        self.analyzed += self.pg.analyzed(self.database, "deliveries")
        self.pg.settle()
        self.drained.append(drained)

    def _fill(self, opts: Options, config: Path, port: int, token: str, events: int) -> None:
        argv = [*relay_command(), "serve", "--no-dispatch", "--config", str(config)]
        with Server(f"{self.name}-fill", argv, port, self.work) as relay:
            load = event_load(port, token, events, opts.concurrency)
            outcome = require_status(f"{self.name} (backlog fill)", opts.load.run(load, self.work))
            code = relay.stop()
        if code != 0:
            raise BenchError(f"relay exited with {code} on SIGTERM:\n{relay.log_tail()}")
        rows = self._scalar("SELECT COUNT(*) FROM deployments")
        if rows != outcome.count(201):
            raise BenchError(f"{self.name}: {outcome.count(201)} answers 201 but {rows} rows")
        pending = self._scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'pending'")
        if pending != events * FORWARDERS:
            raise BenchError(
                f"{self.name}: {pending} pending deliveries, not {events * FORWARDERS}"
            )
        self.fill_rates.append(outcome.rate(201))

    def _scalar(self, query: str) -> int:
        return self.pg.scalar(self.database, query)

    def result(self, opts: Options, plan: Plan, sqlite: Result, about: str) -> Result:
        self.pg.drop(self.database)
        count = sum(d.sink.count for d in self.drained)
        each = count // max(len(self.drained), 1)
        plural = "worker" if self.workers == 1 else "workers"
        return Result(
            benchmark=NAME,
            metric=f"deliveries/s draining {plan.pg_events * FORWARDERS:,}, PostgreSQL, "
            f"{self.workers} {plural}",
            relay=[d.sink.rate for d in self.drained],
            baseline=list(sqlite.baseline),
            target=FANOUT_TARGET,
            notes=[
                f"each round: a fresh database (DROP/CREATE) filled with "
                f"{plan.pg_events:,} events x {FORWARDERS} forwarders by `relay serve "
                f"--no-dispatch` (median {median(self.fill_rates):,.0f} events/s, "
                f"{opts.load.name}), then drained whole by {self.workers} `relay worker` "
                f"started together ({each:,} deliveries a round, {count:,} in all; "
                f"{'--quick' if plan.quick else f'--quick: {QUICK_PG_ROUND_EVENTS} events'}); "
                "the baseline's rounds are the SQLite segments' size",
                f"{self.workers} x {FORWARDERS} x {CONCURRENCY} = "
                f"{self.workers * FORWARDERS * CONCURRENCY} connections to the sinks; "
                f"baseline: the same bench/_pyload.py rounds as the SQLite row "
                f"({FORWARDERS * CONCURRENCY} connections, one process)",
                f"CPU per request, process start-up included: relay {_cpu_us(self.drained):.0f} "
                "µs (all workers, all threads; PostgreSQL's own not counted)",
                f"every delivery `delivered` in the database after each round; "
                f"{self.duplicates} sent twice",
                f"planner statistics of deliveries by the end of the round: {self.analyzed} of "
                f"{len(self.drained)} rounds (a fresh database has none until autovacuum's "
                "first pass; a relay that opens one holding a backlog gathers them itself)",
                f"{about}; pool per worker {POOL['pool_min']}-{POOL['pool_max']} connections "
                "(relay's default)",
            ],
        )


def _fill_backlog(opts: Options, plan: Plan, config: Path, db: Path, sinks: Sinks) -> float:
    """Post the backlog's events to a relay that does not dispatch; its 201s per second."""
    port, token = free_port(), _token()
    targets = [sinks.url(p) for p in sinks.ports]
    write_config(config, db=db, port=port, token=token, forwarders=_forwarders(targets))
    argv = [*relay_command(), "serve", "--no-dispatch", "--config", str(config)]
    with Server("relay-fill", argv, port, config.parent) as relay:
        load = event_load(port, token, plan.events, opts.concurrency)
        outcome = require_status("relay (backlog fill)", opts.load.run(load, config.parent))
        code = relay.stop()
    if code != 0:
        raise BenchError(f"relay exited with {code} on SIGTERM:\n{relay.log_tail()}")
    pending = _scalar(db, "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'")
    if pending != plan.deliveries:
        raise BenchError(f"the backlog holds {pending} pending deliveries, not {plan.deliveries}")
    if sinks.stats().count:
        raise BenchError("relay delivered while serving with --no-dispatch")
    return outcome.rate(201)


def _drain_segment(work: Path, config: Path, sinks: Sinks, want: int) -> Drained:
    """Run `relay worker` on the backlog until `want` more deliveries have arrived."""
    sinks.reset()
    cpu = _children_cpu()
    argv = [*relay_command(), "worker", "--processes", str(PROCESSES), "--config", str(config)]
    with Worker("relay-worker", argv, work, ready="worker_started") as worker:
        if not sinks.wait_for(want, 30 + want / MIN_DRAIN_RATE, worker):
            raise BenchError(f"relay delivered {sinks.stats().count} of {want} in time")
        code = worker.stop()
    if code != 0:
        raise BenchError(f"relay worker exited with {code} on SIGTERM:\n{worker.log_tail()}")
    # Read after the exit: the sends in flight at SIGTERM count too.
    return Drained(sinks.stats(), _children_cpu() - cpu)


def _baseline_spec(sinks: Sinks) -> dict[str, Any]:
    """bench/_pyload.py's spec: relay's connections, and the request relay just sent
    (body and headers as the sinks got them) so that both send and parse the same bytes."""
    sample = sinks.sample()
    lines = sample["head"].split("\r\n")[1:]
    headers = dict(line.split(": ", 1) for line in lines)
    for name in [n for n in headers if n.lower() in SET_BY_CLIENT]:
        del headers[name]
    return {
        "urls": [sinks.url(p) for p in sinks.ports],
        "headers": headers,
        "body": sample["body"],
        "concurrency": FORWARDERS * CONCURRENCY,
    }


def _baseline_round(spec: dict[str, Any], sinks: Sinks, size: int) -> Drained:
    sinks.reset()
    cpu = _children_cpu()
    data = run_helper(PYLOAD, {**spec, "requests": size}, timeout=60 + size / MIN_DRAIN_RATE)
    cpu = _children_cpu() - cpu
    statuses = {int(k): v for k, v in data["statuses"].items()}
    if set(statuses) != {200}:
        raise BenchError(f"the sinks answered the bare client with {statuses}")
    stats = sinks.stats()
    if stats.count != size:
        raise BenchError(f"the bare client sent {size} requests, the sinks saw {stats.count}")
    return Drained(stats, cpu)


def _check_drained(db: Path, plan: Plan, received: int) -> int:
    """BenchError unless every delivery is `delivered`; how many arrived twice."""
    delivered = _scalar(db, "SELECT COUNT(*) FROM deliveries WHERE status = 'delivered'")
    if delivered != plan.deliveries:
        raise BenchError(f"{delivered} of {plan.deliveries} deliveries are delivered")
    if received < delivered:
        raise BenchError(f"{delivered} deliveries recorded but the sinks saw only {received}")
    return received - delivered


def _fanout_notes(
    opts: Options,
    plan: Plan,
    fill_rate: float,
    relay: list[Drained],
    baseline: list[Drained],
    duplicates: int,
) -> list[str]:
    size = "--quick" if plan.quick else "the issue's size; --quick uses 4,000 events"
    relay_sink = _pooled([r.sink for r in relay])
    base_sink = _pooled([r.sink for r in baseline])
    return [
        f"backlog: {plan.events:,} events x {FORWARDERS} webhook forwarders = "
        f"{plan.deliveries:,} deliveries ({size}); filled by `relay serve --no-dispatch` "
        f"at {fill_rate:,.0f} events/s ({opts.load.name})",
        f"relay: `relay worker --processes {PROCESSES}` on that file (each process with its "
        f"share of every forwarder's concurrency), {plan.rounds} segments of the drain; "
        f"baseline: bench/_pyload.py (one process), {plan.rounds} rounds, "
        f"{plan.deliveries:,} requests in all; {FORWARDERS} x {CONCURRENCY} = "
        f"{FORWARDERS * CONCURRENCY} connections each",
        f"rates timed by the sinks (first to last arrival); mean body "
        f"{relay_sink.mean_body:.0f} B (relay) vs {base_sink.mean_body:.0f} B (baseline); "
        f"sink handler {relay_sink.busy_us:.0f} µs/request",
        f"CPU per request, process start-up included: relay "
        f"{_cpu_us(relay):.0f} µs (all threads) vs bare client {_cpu_us(baseline):.0f} µs",
        f"all {plan.deliveries:,} deliveries `delivered` in the database; "
        f"{duplicates} sent twice (across a worker restart)",
        "relay logs at info, its default (to a file): failed attempts only, a success "
        "is a debug line",
    ]


def _pooled(stats: list[SinkStats]) -> SinkStats:
    """Counts and times of several rounds added up (first and last are dropped)."""
    return SinkStats(
        sum(s.count for s in stats),
        None,
        None,
        sum(s.busy for s in stats),
        sum(s.body_bytes for s in stats),
        sum(s.hang_connections for s in stats),
    )


def _cpu_us(rounds: list[Drained]) -> float:
    return sum(r.cpu for r in rounds) / sum(r.sink.count for r in rounds) * 1e6


def _children_cpu() -> float:
    # Covers the children that have been waited for: each round's sender once it exits.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- latency and isolation -------------------------------------------------------------


def _latency_rounds(plan: Plan, work: Path, sinks: Sinks) -> dict[Kind, list[LatencyRound]]:
    """Rounds of every kind; the order rotates so that each kind runs in each position."""
    rounds: dict[Kind, list[LatencyRound]] = {kind: [] for kind in KINDS}
    seconds = LATENCY_SECONDS / LATENCY_ROUNDS
    for i in range(LATENCY_ROUNDS):
        for kind in _order(i, KINDS):
            rounds[kind].append(_latency_round(work, sinks, kind, seconds, i + 1))
    return rounds


def _latency_round(
    work: Path, sinks: Sinks, kind: Kind, seconds: float, number: int
) -> LatencyRound:
    name = f"relay-{kind}-{number}"
    db, config = work / f"{name}.db", work / f"{name}.toml"
    live = sinks.ports if kind == "healthy" else sinks.ports[:-1]
    targets = [sinks.url(p) for p in live] + ([sinks.url(sinks.hang)] if kind == "hanging" else [])
    port, token = free_port(), _token()
    write_config(config, db=db, port=port, token=token, forwarders=_forwarders(targets))
    with Server(name, [*relay_command(), "serve", "--config", str(config)], port, work) as relay:
        sinks.reset()
        paced = _paced_load(port, token, seconds)
        answers = [(ident, at, warm) for ident, at, warm in paced["answers"]]
        sinks.wait_for(len(answers) * len(live), ARRIVAL_GRACE_S, relay)
        gave_up = time.time()
        stats, arrivals = sinks.stats(), sinks.arrivals()
        code = relay.stop()
    if code != 0:
        raise BenchError(f"{name} exited with {code} on SIGTERM:\n{relay.log_tail()}")
    latencies, missing = _match(answers, arrivals, live, gave_up)
    timed_out = _timeouts(db, f"sink{FORWARDERS}") if kind == "hanging" else 0
    return LatencyRound(kind, latencies, missing, stats, paced["behind"], timed_out)


def _paced_load(port: int, token: str, seconds: float) -> dict[str, Any]:
    load = event_load(port, token, requests=0, concurrency=0)  # its url, headers and body
    spec = {
        "url": load.url,
        "headers": load.headers,
        "body": load.body.decode(),
        "rate": LATENCY_RATE,
        "warmup": LATENCY_WARMUP_S,
        "seconds": seconds,
    }
    data = run_helper(PACED_CLIENT, spec)
    statuses = {int(k): v for k, v in data["statuses"].items()}
    if set(statuses) != {201}:
        raise BenchError(f"relay answered the paced client with {statuses}")
    return dict(data)


def _match(
    answers: list[tuple[str, float, bool]],
    arrivals: list[tuple[int, str, float]],
    ports: Sequence[int],
    gave_up: float,
) -> tuple[dict[int, list[float]], int]:
    """ms from each measured 201 to its arrival at each port; a delivery that never
    arrived counts as arriving when the wait ended (a lower bound), and is counted."""
    first: dict[tuple[int, str], float] = {}
    for port, ident, at in arrivals:
        first.setdefault((port, ident), at)  # a resend is not a second delivery
    latencies: dict[int, list[float]] = {p: [] for p in ports}
    missing = 0
    for ident, answered, warm in answers:
        if warm:
            continue
        for port in ports:
            arrived = first.get((port, ident))
            missing += arrived is None
            latencies[port].append(((arrived or gave_up) - answered) * 1000)
    return latencies, missing


def _timeouts(db: Path, forwarder: str) -> int:
    return _scalar(
        db,
        "SELECT COUNT(*) FROM attempts a JOIN deliveries d ON d.seq = a.delivery_seq "
        "WHERE d.forwarder = ? AND a.outcome = 'retry'",
        (forwarder,),
    )


def _latency_results(
    plan: Plan, sinks: Sinks, rounds: dict[Kind, list[LatencyRound]]
) -> list[Result]:
    """Each percentile over the samples of all rounds of a kind: a round's p99 rests on
    its ~50 slowest deliveries, so one stall of the shared machine sets it (per-round
    p99s of identical rounds differ 2-3x), while 30 s of samples smooth such stalls."""
    healthy, hanging = rounds["healthy"], rounds["hanging"]
    four = sinks.ports[:-1]
    common = _latency_notes([r for rs in rounds.values() for r in rs])
    return [
        Result(
            "latency",
            "p50 ms, 201 -> sink",
            [r.percentile(50) for r in healthy],
            [],
            None,
            higher_is_better=False,
            notes=[f"{FORWARDERS} healthy webhook forwarders", *common],
            pooled=(pooled(healthy, 50), None),
        ),
        Result(
            "latency",
            "p99 ms, 201 -> sink",
            [r.percentile(99) for r in healthy],
            [],
            P99_BUDGET_MS,
            higher_is_better=False,
            notes=[f"target: p99 < {P99_BUDGET_MS:.0f} ms (the issue's)", *common],
            pooled=(pooled(healthy, 99), None),
        ),
        Result(
            "isolation",
            "healthy p99 ms, one target hanging",
            [r.percentile(99, four) for r in hanging],
            [r.percentile(99, four) for r in healthy],
            ISOLATION_TARGET,
            higher_is_better=False,
            notes=[*_isolation_notes(rounds, four), *common],
            pooled=(pooled(hanging, 99, four), pooled(healthy, 99, four)),
        ),
    ]


def pooled(rounds: list[LatencyRound], q: float, ports: Sequence[int] | None = None) -> float:
    """The q-th percentile of the samples of all `rounds` together."""
    return percentile([v for r in rounds for p in ports or r.latencies for v in r.latencies[p]], q)


def _latency_notes(rounds: list[LatencyRound]) -> list[str]:
    per_round = LATENCY_SECONDS / LATENCY_ROUNDS
    return [
        f"{LATENCY_RATE:.0f} events/s offered (open loop) to a fresh `relay serve` per round: "
        f"{LATENCY_ROUNDS} rounds x {per_round:.0f} s of each kind ({', '.join(KINDS)}) after a "
        f"{LATENCY_WARMUP_S:.0f} s warm-up, in rotating order",
        "latency = sink's time.time() at arrival - client's time.time() once the 201 was "
        f"read; sink handler {_mean(r.sink.busy_us for r in rounds):.0f} µs/request, paced "
        f"client at most {max(r.behind for r in rounds) * 1000:.1f} ms behind schedule",
        _missing_note(rounds),
    ]


def _isolation_notes(rounds: dict[Kind, list[LatencyRound]], ports: list[int]) -> list[str]:
    control = pooled(rounds["four"], 99, ports)
    hanging = pooled(rounds["hanging"], 99, ports)
    per_round = ", ".join(f"{r.percentile(99, ports):.1f}" for r in rounds["four"])
    return [
        f"relay: p99 of sink1-{FORWARDERS - 1} while sink{FORWARDERS} hangs (timeout "
        f"{TIMEOUT}); baseline: p99 of the same 4 in the all-healthy rounds (the issue's "
        "comparison; those rounds carry a 5th forwarder's work, which flatters the ratio); "
        "both over all their rounds' samples, the table below gives each round's own",
        f"control, {FORWARDERS - 1} forwarders and no 5th: p99 {control:.1f} ms (rounds: "
        f"{per_round}); hanging / control = {hanging / control:.2f}, what the hanging "
        "target itself costs the others",
        f"hanging target: {_mean(r.sink.hang_connections for r in rounds['hanging']):.0f} "
        f"connections and {_mean(r.timed_out for r in rounds['hanging']):.0f} timed-out "
        "attempts per round (relay's circuit opens after 5 failures in a row)",
    ]


def _missing_note(rounds: list[LatencyRound]) -> str:
    missing = sum(r.missing for r in rounds)
    if not missing:
        return "every delivery to a healthy sink arrived"
    return (
        f"{missing} deliveries to healthy sinks had not arrived {ARRIVAL_GRACE_S:.0f} s "
        "after the last 201: counted as arriving then (a lower bound)"
    )


# -- small helpers ---------------------------------------------------------------------


def _forwarders(urls: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {
            "name": f"sink{i}",
            "type": "webhook",
            "url": url,
            "secret": SECRET,
            "timeout": TIMEOUT,
            "concurrency": CONCURRENCY,
        }
        for i, url in enumerate(urls, start=1)
    ]


def _token() -> str:
    return "bench-" + secrets.token_urlsafe(24)


def _split(total: int, parts: int) -> list[int]:
    """`total` in `parts` near-equal integers."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _order(i: int, items: tuple[T, ...]) -> tuple[T, ...]:
    # Rotated each round, so that drift (page cache, CPU clock, other load) hits all alike.
    shift = i % len(items)
    return items[shift:] + items[:shift]


def _scalar(db: Path, query: str, params: tuple[Any, ...] = ()) -> int:
    with closing(sqlite3.connect(db)) as conn:
        value: int = conn.execute(query, params).fetchone()[0]
    return value


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile: the smallest value with q% of them at or below it."""
    if not values:
        raise BenchError("no latency was measured")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]
