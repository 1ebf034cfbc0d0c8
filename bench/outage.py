"""Outage and recovery: a long outage of the target fills the outbox; then it comes back.

One default `relay serve` (dispatch in-process, SQLite) with 5 webhook forwarders to the
sinks (bench/_sink_server.py), which answer 503 for the whole fill: the outbox fills to
`--outage-deliveries` pending deliveries (default 1,000,000: 200,000 events x 5; with
--quick at most 100,000), posted by wrk at 32 connections. Figures:

- peak RSS of relay (all of the run, sampled every 0.5 s; goal <= 100 MB), and its RSS
  at the end of the fill;
- database bytes per pending delivery: the SQLite file and its WAL after the fill,
  divided by the pending deliveries (events, indexes and all; goal <= 400);
- unattended recovery: the sinks answer 200 again and nobody does anything: seconds
  until every forwarder's probe went through and its drain started (goal <= 60, the
  default delivery.circuit_max_cooldown). Then the target goes down again until every
  circuit is open once more;
- resumed recovery: the sinks answer 200 again and an admin resumes the 5 forwarders
  (POST /forwarders/{name}/resume) at once: seconds until every forwarder's drain
  started (goal <= 5);
- the drain rate after the resume (deliveries/s at the sinks, first to last arrival),
  against the fan-out baseline of fanout.py: bench/_pyload.py, a bare aiohttp
  ClientSession posting relay's own request (body and headers as the sinks got it) to
  the same sinks over the same 5 x 8 connections, 2 rounds of up to 100,000 requests
  after the drain (goal >= 0.6).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
import urllib.request
from contextlib import closing
from pathlib import Path
from statistics import median
from tempfile import TemporaryDirectory
from typing import Any

from _harness import (
    BenchError,
    Options,
    Result,
    Server,
    event_load,
    filesystem_of,
    free_port,
    relay_command,
    relay_source,
    require_status,
)
from _harness import write_config as write_relay_config
from _proc import rss_bytes
from fanout import SECRET, Sinks, _baseline_round, _baseline_spec

NAME = "outage"
FORWARDERS = 5
QUICK_DELIVERIES = 100_000
FILL_CONNECTIONS = 32
FILL_PART = 40_000  # events per wrk run
BASELINE_REQUESTS = 100_000
BASELINE_ROUNDS = 2
RSS_GOAL_MB = 100.0
BYTES_GOAL = 400.0
RESUME_GOAL_S = 5.0
UNATTENDED_GOAL_S = 60.0
DRAIN_GOAL = 0.6
MIB = 1024 * 1024


class RssSampler:
    """Samples a process family's RSS every 0.5 s in a thread; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.last = pid, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.last = rss_bytes([self.pid])
            self.peak = max(self.peak, self.last)


class Relay:
    """The relay under test: HTTP calls with the admin token, reads of its database."""

    def __init__(self, server: Server, token: str, db: Path) -> None:
        self.server, self.token, self.db = server, token, db

    def call(self, method: str, path: str) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.server.port}{path}",
            method=method,
            headers={"Authorization": f"Bearer {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.loads(resp.read())

    def states(self) -> list[str]:
        return [f["state"] for f in self.call("GET", "/forwarders")]

    def scalar(self, query: str) -> int:
        with closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)) as conn:
            value: int = conn.execute(query).fetchone()[0]
        return value

    def wait_until(self, check: Any, timeout: float, what: str) -> float:
        """Poll `check` every 0.05 s; the seconds it took."""
        started = time.monotonic()
        while not check():
            self.server.check_alive()
            if time.monotonic() - started > timeout:
                raise BenchError(f"{what} did not happen within {timeout:.0f} s")
            time.sleep(0.05)
        return time.monotonic() - started


def _set_status(sinks: Sinks, status: int) -> None:
    sinks._call(f"/status/{status}", "POST")


def _all_ports_arrived(sinks: Sinks) -> bool:
    per_port = sinks._call("/stats")["per_port"]
    return all(n > 0 for n in per_port.values())


def _any_arrived(sinks: Sinks) -> bool:
    return bool(sinks._call("/stats")["count"])


def run(opts: Options) -> list[Result]:
    """Fill, recover unattended, fail again, recover with a resume, drain; baseline."""
    count = opts.outage_deliveries
    if opts.quick:
        count = min(count, QUICK_DELIVERIES)
    events = count // FORWARDERS
    with TemporaryDirectory(prefix="relay-bench-outage-") as tmp:
        work = Path(tmp)
        sinks = Sinks(work)
        with sinks.server:
            _set_status(sinks, 503)
            token = "bench-" + secrets.token_urlsafe(24)
            db = work / "relay.db"
            port = free_port()
            config = work / "relay.toml"
            forwarders = [
                {"name": f"sink{i}", "type": "webhook", "url": sinks.url(p), "secret": SECRET}
                for i, p in enumerate(sinks.ports, start=1)
            ]
            write_relay_config(
                config,
                db=db,
                port=port,
                token=token,
                forwarders=forwarders,
                scopes=("events:write", "events:read", "admin"),
            )
            argv = [*relay_command(), "serve", "--config", str(config)]
            with Server("relay", argv, port, work) as server, RssSampler(server.pid) as rss:
                relay = Relay(server, token, db)
                figures = _outage(opts, relay, sinks, events, rss)
                spec = _baseline_spec(sinks)
                code = server.stop()
            if code != 0:
                raise BenchError(f"relay exited with {code} on SIGTERM:\n{server.log_tail()}")
            size = min(BASELINE_REQUESTS, count)
            baseline = [
                _baseline_round(spec, sinks, size).sink.rate for _ in range(BASELINE_ROUNDS)
            ]
        figures["fs"] = filesystem_of(work)
    return _results(figures, rss, baseline, count, size)


def _outage(
    opts: Options, relay: Relay, sinks: Sinks, events: int, rss: RssSampler
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    started = time.monotonic()
    answered, seconds = 0, 0.0
    while answered < events:  # in parts: one wrk run must end within its time bound
        part = min(FILL_PART, events - answered)
        load = event_load(relay.server.port, relay.token, part, FILL_CONNECTIONS)
        fill = require_status("relay (fill)", opts.load.run(load, relay.server.workdir))
        answered += fill.count(201)
        seconds += fill.seconds
    figures["fill_rate"] = answered / seconds
    figures["fill_s"] = time.monotonic() - started
    pending = relay.scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'pending'")
    if pending != events * FORWARDERS:
        raise BenchError(f"{pending} pending deliveries after the fill, not {events * FORWARDERS}")
    figures["pending"] = pending
    figures["db_bytes"] = sum(
        p.stat().st_size for p in (relay.db, Path(f"{relay.db}-wal")) if p.exists()
    )
    figures["rss_fill"] = rss.last
    relay.wait_until(lambda: set(relay.states()) == {"circuit-open"}, 120, "every circuit open")
    # Unattended: the target is back, nobody acts.
    sinks.reset()
    _set_status(sinks, 200)
    figures["unattended_first"] = relay.wait_until(lambda: _any_arrived(sinks), 300, "a probe")
    figures["unattended_all"] = (
        relay.wait_until(lambda: _all_ports_arrived(sinks), 300, "every forwarder's probe")
        + figures["unattended_first"]
    )
    # Down again, long enough for every circuit to open and its probe to back off.
    _set_status(sinks, 503)
    relay.wait_until(lambda: set(relay.states()) == {"circuit-open"}, 120, "circuits open again")
    time.sleep(5)
    remaining = relay.scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'pending'")
    sinks.reset()
    _set_status(sinks, 200)
    back = time.monotonic()
    for i in range(1, FORWARDERS + 1):
        relay.call("POST", f"/forwarders/sink{i}/resume")
    figures["resume_call_s"] = time.monotonic() - back
    figures["resumed_first"] = relay.wait_until(lambda: _any_arrived(sinks), 60, "a delivery")
    figures["resumed_all"] = (
        relay.wait_until(lambda: _all_ports_arrived(sinks), 60, "every forwarder")
        + figures["resumed_first"]
        + figures["resume_call_s"]
    )
    figures["resumed_first"] += figures["resume_call_s"]
    figures["remaining"] = remaining
    relay.wait_until(lambda: sinks.stats().count >= remaining, 60 + remaining / 200, "the drain")
    figures["drain_rate"] = sinks.stats().rate
    figures["drain_s"] = time.monotonic() - back
    left = relay.scalar("SELECT COUNT(*) FROM deliveries WHERE status <> 'delivered'")
    if left:
        raise BenchError(f"{left} deliveries not delivered after the drain")
    figures["load"] = os.getloadavg()[0]
    return figures


def _results(
    f: dict[str, Any], rss: RssSampler, baseline: list[float], count: int, size: int
) -> list[Result]:
    common = [
        f"{count:,} pending deliveries ({count // FORWARDERS:,} events x {FORWARDERS} webhook "
        f"forwarders, target answering 503), filled at {f['fill_rate']:,.0f} events/s "
        f"({f['fill_s']:.0f} s) by wrk at {FILL_CONNECTIONS} connections into one default "
        f"`relay serve`; SQLite on {f['fs']}",
        f"load average {f['load']:.2f}; {relay_source()}",
    ]
    mb = MIB
    return [
        Result(
            NAME,
            "peak RSS MiB, relay serve, whole run",
            [rss.peak / mb],
            [],
            RSS_GOAL_MB,
            higher_is_better=False,
            notes=[f"RSS at the end of the fill {f['rss_fill'] / mb:.0f} MiB", *common],
        ),
        Result(
            NAME,
            "database bytes per pending delivery",
            [f["db_bytes"] / f["pending"]],
            [],
            BYTES_GOAL,
            higher_is_better=False,
            notes=[f"SQLite file + WAL after the fill: {f['db_bytes'] / 1e6:,.0f} MB", *common],
        ),
        Result(
            NAME,
            "s from recovery to every forwarder's drain, unattended",
            [f["unattended_all"]],
            [],
            UNATTENDED_GOAL_S,
            higher_is_better=False,
            notes=[
                f"first delivery after {f['unattended_first']:.1f} s; default "
                "delivery.circuit_max_cooldown (60 s) caps the probe interval",
                *common,
            ],
        ),
        Result(
            NAME,
            "s from recovery to every forwarder's drain, after an admin's resume",
            [f["resumed_all"]],
            [],
            RESUME_GOAL_S,
            higher_is_better=False,
            notes=[
                f"5 POST /forwarders/{{name}}/resume took {f['resume_call_s']:.2f} s; first "
                f"delivery {f['resumed_first']:.2f} s after the target came back",
                *common,
            ],
        ),
        Result(
            NAME,
            "drain deliveries/s after the resume, one relay serve",
            [f["drain_rate"]],
            [median(baseline)],
            DRAIN_GOAL,
            notes=[
                f"{f['remaining']:,} deliveries drained in {f['drain_s']:.0f} s; baseline: "
                f"bench/_pyload.py (bare ClientSession, relay's request, 5 x 8 connections), "
                f"{BASELINE_ROUNDS} rounds of {size:,} after the drain (rates "
                f"{', '.join(f'{b:,.0f}' for b in baseline)}; median {median(baseline):,.0f})",
                *common,
            ],
        ),
    ]
