"""Pipeline: the highest event rate one relay ingests *and* delivers, against bare aiohttp.

What `make run` starts: one default `relay serve` (dispatch in the same process, SQLite,
info logging) with 5 webhook forwarders to local sinks (bench/_sink_server.py, one port
each, relay's default concurrency of 8). The baseline, bench/_fanout_server.py, is one
bare aiohttp process that parses the JSON, answers 201 and posts the event to the same
5 sinks with one ClientSession (8 connections per sink), with no storage at all. A
third row runs relay as `relay serve --no-dispatch` + `relay worker --processes 2`.

A rate is *sustained* when, offered on a schedule (wrk with bench/_paced.lua, 128
connections, open loop: a request goes at its time whether or not earlier ones were
answered, as long as a connection is free), every answer is 201, the schedule never
slipped (at least 95% of the rate achieved), the 201's p99 is under 100 ms, and the
backlog when the load stops (5 x the 201s minus the sinks' arrivals) is at most one
second's worth of deliveries: a delivery side that falls behind by more than ~3% over a
30 s hold fails. After every step the backlog must drain completely (every event
delivered 5 times) before the next.

Each round searches every server's highest sustained rate with short probe steps
(bisection from the last round's figure), then holds the rate found for the full time
(`RELAY_BENCH_PIPELINE_HOLD`, default 30 s; 10 s with --quick), stepping down by 15%
until a hold passes. The servers' rounds interleave; the table quotes medians of the
held rates. The notes give the CPU time per event (µs, user + system of every process
of the server, deliveries included) during the holds.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import sys
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory

from _harness import (
    BENCH_DIR,
    BenchError,
    Options,
    Result,
    Server,
    Together,
    Worker,
    event_load,
    filesystem_of,
    free_port,
    relay_command,
    relay_source,
    write_config,
)
from _paced_wrk import Paced, run_paced, wrk_path
from _proc import cpu_seconds
from fanout import SECRET, Sinks

NAME = "pipeline"
TARGET = 0.8
P99_BUDGET_MS = 100.0
CONNECTIONS = 128
FORWARDERS = 5
HOLD_S = float(os.environ.get("RELAY_BENCH_PIPELINE_HOLD", "30"))
QUICK_HOLD_S = 10.0
PROBE_S = 5.0
QUICK_PROBE_S = 3.0
PROBES = 5
MAX_ROUNDS = 3
FIRST_GUESS = 300.0  # events/s, where the first round's search starts
DRAIN_TIMEOUT_S = 120.0
WORKER_PROCESSES = 2
# A short probe does not show a backlog that grows slowly: a hold that fails steps down.
HOLD_TRIES = 12
HOLD_STEP_DOWN = 0.85


@dataclass
class Step:
    """One rate offered for some seconds, and what came of it."""

    rate: float
    paced: Paced
    backlog: int  # deliveries not yet at the sinks when the load ended
    cpu: float  # CPU seconds of the server's processes during the step

    def verdict(self) -> str:
        """'' when the rate was sustained, else why not."""
        p = self.paced
        if p.count(201) != p.sent:
            return f"answers {p.statuses}"
        if p.achieved < 0.95 * self.rate:
            return f"schedule slipped ({p.achieved:.0f}/s of {self.rate:.0f})"
        if p.p99_ms >= P99_BUDGET_MS:
            return f"p99 {p.p99_ms:.0f} ms"
        if self.backlog > FORWARDERS * self.rate:
            return f"backlog {self.backlog} deliveries at the end"
        return ""


@dataclass
class Contender:
    """One server under test: how to start it, its processes, its held rates."""

    name: str
    start: Callable[[], Server | Together]
    running: Server | Together | None = None
    held: list[Step] = field(default_factory=list)
    tried: list[tuple[float, str]] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        group = self.running
        if isinstance(group, Together):
            return [s.pid for s in group.servers]
        assert group is not None
        return [group.pid]

    @property
    def port(self) -> int:
        group = self.running
        if isinstance(group, Together):
            return group.servers[0].port
        assert group is not None
        return group.port


class Bench:
    """The sinks, the load, and the search."""

    def __init__(self, opts: Options, work: Path, sinks: Sinks, token: str) -> None:
        self.opts, self.work, self.sinks, self.token = opts, work, sinks, token
        self.wrk = wrk_path(opts)
        self.hold = QUICK_HOLD_S if opts.quick else HOLD_S
        self.probe = QUICK_PROBE_S if opts.quick else PROBE_S

    def step(self, who: Contender, rate: float, seconds: float) -> Step:
        """Offer `rate` for `seconds`; wait for the backlog to drain."""
        self.sinks.reset()
        token = self.token if who.name != "baseline" else ""
        load = event_load(who.port, token, max(1, round(rate * seconds)), CONNECTIONS)
        before = cpu_seconds(who.pids)
        paced = run_paced(self.wrk, load, rate, self.work)
        arrived = self.sinks.stats().count
        cpu = cpu_seconds(who.pids) - before
        want = FORWARDERS * paced.count(201)
        assert who.running is not None
        if not self.sinks.wait_for(want, DRAIN_TIMEOUT_S, who.running):
            raise BenchError(f"{who.name}: {self.sinks.stats().count} of {want} deliveries")
        return Step(rate, paced, want - arrived, cpu)

    def search(self, who: Contender, guess: float) -> None:
        """Bisect the highest sustained rate with probe steps, then hold it."""
        lo: float | None = None
        hi: float | None = None
        rate = guess
        factor = 1.5 if not who.held else 1.2
        for _ in range(PROBES):
            verdict = self.step(who, rate, self.probe).verdict()
            who.tried.append((rate, verdict or "ok"))
            if not verdict:
                lo = rate
                rate = rate * factor if hi is None else (lo + hi) / 2
            else:
                hi = rate
                rate = rate / factor if lo is None else (lo + hi) / 2
        rate = lo if lo is not None else rate
        for _ in range(HOLD_TRIES):
            held = self.step(who, rate, self.hold)
            verdict = held.verdict()
            who.tried.append((rate, f"hold: {verdict or 'ok'}"))
            if not verdict:
                who.held.append(held)
                return
            rate *= HOLD_STEP_DOWN
        raise BenchError(f"{who.name} sustained no rate down to {rate:.0f}/s")


def run(opts: Options) -> list[Result]:
    """Interleaved rounds of the baseline and both relay set-ups."""
    rounds = max(1, min(opts.rounds, MAX_ROUNDS if not opts.quick else 2))
    with TemporaryDirectory(prefix="relay-bench-pipeline-") as tmp:
        work = Path(tmp)
        token = "bench-" + secrets.token_urlsafe(24)
        sinks = Sinks(work)
        with sinks.server:
            bench = Bench(opts, work, sinks, token)
            contenders = _contenders(work, sinks, token)
            try:
                for who in contenders:
                    who.running = who.start()
                    who.running.__enter__()
                    bench.step(who, 100, 2)  # warm-up: imports, connections, caches
                for i in range(rounds):
                    shift = i % len(contenders)
                    for who in contenders[shift:] + contenders[:shift]:
                        guess = who.held[-1].rate if who.held else FIRST_GUESS
                        bench.search(who, guess)
            finally:
                for who in contenders:
                    if who.running is not None:
                        who.running.__exit__(None, None, None)
        fs = filesystem_of(work)
        for who in contenders[1:]:
            _check_stored(work / f"{who.name}.db", who)
    base = contenders[0]
    return [_result(opts, who, base, bench, fs) for who in contenders[1:]]


def _contenders(work: Path, sinks: Sinks, token: str) -> list[Contender]:
    urls = [sinks.url(p) for p in sinks.ports]
    forwarders = [
        {"name": f"sink{i}", "type": "webhook", "url": url, "secret": SECRET}
        for i, url in enumerate(urls, start=1)
    ]

    def baseline() -> Server:
        port = free_port()
        argv = [sys.executable, str(BENCH_DIR / "_fanout_server.py"), str(port), *urls]
        return Server("baseline", argv, port, work)

    def config(name: str) -> tuple[Path, int]:
        port = free_port()
        path = work / f"{name}.toml"
        db = work / f"{name}.db"
        write_config(path, db=db, port=port, token=token, forwarders=forwarders)
        return path, port

    def serve() -> Server:
        path, port = config("relay")
        return Server("relay", [*relay_command(), "serve", "--config", str(path)], port, work)

    def split() -> Together:
        path, port = config("relay-worker")
        api = Server(
            "relay-worker",
            [*relay_command(), "serve", "--no-dispatch", "--config", str(path)],
            port,
            work,
        )
        argv = [*relay_command(), "worker", "--processes", str(WORKER_PROCESSES)]
        worker = Worker("worker", [*argv, "--config", str(path)], work, ready="worker_started")
        return Together([api, worker])

    return [
        Contender("baseline", baseline),
        Contender("relay", serve),
        Contender("relay-worker", split),
    ]


def _check_stored(db: Path, who: Contender) -> None:
    """Every 201 is a row and every delivery was delivered."""
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT COUNT(*) FROM deployments").fetchone()[0]
        open_ = conn.execute(
            "SELECT COUNT(*) FROM deliveries WHERE status <> 'delivered'"
        ).fetchone()[0]
        deliveries = conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
    if open_ or deliveries != rows * FORWARDERS:
        raise BenchError(f"{who.name}: {rows} events, {deliveries} deliveries, {open_} undelivered")


def _cpu_us(steps: list[Step]) -> float:
    return sum(s.cpu for s in steps) / max(1, sum(s.paced.count(201) for s in steps)) * 1e6


def _result(opts: Options, who: Contender, base: Contender, bench: Bench, fs: str) -> Result:
    label = (
        "one `relay serve` (dispatch in-process)"
        if who.name == "relay"
        else f"`relay serve --no-dispatch` + `relay worker --processes {WORKER_PROCESSES}`"
    )
    p99 = [s.paced.p99_ms for s in who.held]
    return Result(
        benchmark=NAME,
        metric=f"sustained events/s x5 deliveries, {label}",
        relay=[s.rate for s in who.held],
        baseline=[s.rate for s in base.held],
        target=TARGET,
        notes=[
            f"baseline: bench/_fanout_server.py (bare aiohttp: parse, 201, post to the 5 "
            f"sinks with one ClientSession, no storage); held {bench.hold:.0f} s per round, "
            f"probes of {bench.probe:.0f} s; {CONNECTIONS} connections, open-loop schedule",
            f"sustained: all 201, >= 95% of the rate achieved, p99 < {P99_BUDGET_MS:.0f} ms, "
            f"backlog at the end <= 1 s of deliveries, then fully drained",
            f"CPU per event (user+system, all processes, deliveries included): relay "
            f"{_cpu_us(who.held):,.0f} µs, baseline {_cpu_us(base.held):,.0f} µs",
            f"201 p99 in the holds: relay {', '.join(f'{v:.0f}' for v in p99)} ms; baseline "
            f"{', '.join(f'{s.paced.p99_ms:.0f}' for s in base.held)} ms",
            f"steps tried, relay: {_tried(who)}",
            f"steps tried, baseline: {_tried(base)}",
            f"SQLite on {fs}; load average {os.getloadavg()[0]:.2f}; {relay_source()}",
        ],
    )


def _tried(who: Contender) -> str:
    return "; ".join(f"{rate:.0f} {verdict}" for rate, verdict in who.tried)
