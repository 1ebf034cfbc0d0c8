"""Burst: a fleet of 2,000 hosts reporting at once to one default relay.

20,000 events from 2,000 concurrent connections (wrk with bench/_paced.lua, rate 0: every
connection sends its next request as soon as it has the previous answer) to one default
`relay serve` (dispatch in-process, SQLite) with 5 webhook forwarders to the sinks.
Figures: every request answered 201 (none refused, none lost: the rows are counted),
the 201's p99 (goal < 2 s), the time from the first request to the last delivery at the
sinks (all 100,000), and relay's peak RSS. No ratio: the bare fan-out server
(bench/_fanout_server.py) takes the same burst for reference in the notes.

2,000 connections need 2,000 file descriptors in wrk and in the server: this process
raises its own soft RLIMIT_NOFILE to the hard limit (resource.setrlimit) before it
starts them, and they inherit it; relay's own defaults are not changed.
"""

from __future__ import annotations

import os
import resource
import secrets
import sqlite3
import sys
import time
from contextlib import closing
from pathlib import Path
from tempfile import TemporaryDirectory

from _harness import (
    BENCH_DIR,
    BenchError,
    Options,
    Result,
    Server,
    event_load,
    free_port,
    relay_command,
    relay_source,
    write_config,
)
from _paced_wrk import Paced, run_paced, wrk_path
from _proc import rss_bytes
from fanout import SECRET, Sinks
from outage import RssSampler

NAME = "burst"
EVENTS = 20_000
CONNECTIONS = 2_000
QUICK_EVENTS = 5_000
QUICK_CONNECTIONS = 500
FORWARDERS = 5
P99_GOAL_MS = 2_000.0
FDS_NEEDED = CONNECTIONS + 1_000


def raise_fd_limit() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
    if wanted < FDS_NEEDED:
        raise BenchError(f"RLIMIT_NOFILE hard limit {hard} < {FDS_NEEDED}: raise it (ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return soft, wanted


def run(opts: Options) -> list[Result]:
    """The burst on relay, then on the bare fan-out server."""
    wrk = wrk_path(opts)
    events, connections = (QUICK_EVENTS, QUICK_CONNECTIONS) if opts.quick else (EVENTS, CONNECTIONS)
    before, after = raise_fd_limit()
    with TemporaryDirectory(prefix="relay-bench-burst-") as tmp:
        work = Path(tmp)
        sinks = Sinks(work)
        with sinks.server:
            urls = [sinks.url(p) for p in sinks.ports]
            token = "bench-" + secrets.token_urlsafe(24)
            port, db, config = free_port(), work / "relay.db", work / "relay.toml"
            forwarders = [
                {"name": f"sink{i}", "type": "webhook", "url": url, "secret": SECRET}
                for i, url in enumerate(urls, start=1)
            ]
            write_config(config, db=db, port=port, token=token, forwarders=forwarders)
            argv = [*relay_command(), "serve", "--config", str(config)]
            with Server("relay", argv, port, work) as relay, RssSampler(relay.pid) as rss:
                idle_rss = rss_bytes([relay.pid])
                mine, last = _burst(wrk, sinks, relay, token, events, connections, work)
            with closing(sqlite3.connect(db)) as conn:
                rows = conn.execute("SELECT COUNT(*) FROM deployments").fetchone()[0]
            if rows != mine.count(201):
                raise BenchError(f"relay answered 201 {mine.count(201)} times, stored {rows}")
            bport = free_port()
            bargv = [sys.executable, str(BENCH_DIR / "_fanout_server.py"), str(bport), *urls]
            with Server("baseline", bargv, bport, work) as base:
                theirs, their_last = _burst(wrk, sinks, base, "", events, connections, work)
    notes = [
        f"{events:,} events from {connections:,} connections at once (wrk, bench/_paced.lua, "
        f"rate 0); 201s {mine.count(201):,} = rows stored {rows:,}; p50 {mine.p50_ms:.0f} ms, "
        f"p90 {mine.p90_ms:.0f} ms, max {mine.max_ms:.0f} ms",
        f"every one of the {events * FORWARDERS:,} deliveries at the sinks {last:.1f} s after "
        f"the first request; relay peak RSS {rss.peak / 2**20:.0f} MiB (idle "
        f"{idle_rss / 2**20:.0f} MiB)",
        f"bare fan-out server, same burst: p99 {theirs.p99_ms:.0f} ms, last delivery "
        f"{their_last:.1f} s",
        f"RLIMIT_NOFILE of the benchmark raised from {before} to {after} with "
        "resource.setrlimit; wrk and the servers inherit it",
        f"load average {os.getloadavg()[0]:.2f}; {relay_source()}",
    ]
    return [
        Result(
            NAME,
            "p99 ms of the 201, 2,000-host burst" if not opts.quick else "p99 ms of the 201, burst",
            [mine.p99_ms],
            [],
            P99_GOAL_MS,
            higher_is_better=False,
            notes=notes,
        )
    ]


def _burst(
    wrk: str, sinks: Sinks, server: Server, token: str, events: int, connections: int, work: Path
) -> tuple[Paced, float]:
    """The burst; what wrk saw and the seconds from its first request to the last
    delivery at the sinks."""
    sinks.reset()
    load = event_load(server.port, token, events, connections)
    paced = run_paced(wrk, load, 0, work)
    if paced.count(201) != events:
        raise BenchError(f"{server.name} answered {paced.statuses} to the burst")
    if not sinks.wait_for(events * FORWARDERS, 300, server):
        raise BenchError(f"{server.name}: {sinks.stats().count} deliveries of {events * 5}")
    last = sinks.stats().last
    assert last is not None
    # The sinks' clock is time.time(), wrk's CLOCK_MONOTONIC: convert with one reading.
    offset = time.time() - time.monotonic()
    return paced, last - (paced.started + offset)
