"""Ingest: durable events/s of `POST /components/{slug}/deployments`, against bare aiohttp.

Run it with every other benchmark (`make bench`, i.e. `.venv/bin/python bench/run.py`)
or alone (`.venv/bin/python bench/run.py ingest`); `bench/run.py --help` lists the knobs.

relay serves a fresh SQLite file in a temporary directory (TMPDIR; keep it on a real
disk, since tmpfs makes fsync free) with a token from a temporary config. The baseline
is bench/_baseline_server.py: one aiohttp handler that only parses the JSON body. Both
run as subprocesses on loopback ports and get the same load (same generator, requests
and connections) in alternating rounds after a warm-up; the table quotes medians.
Each 201 of relay is durable (the answer waits for the group commit), so the 201s
per second are durable events/s; after the rounds relay is stopped and the rows of
`deployments` are counted, and must equal the 201s.
"""

from __future__ import annotations

import secrets
import sqlite3
import sys
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from _harness import (
    BENCH_DIR,
    BenchError,
    Load,
    Options,
    Outcome,
    Result,
    Server,
    event_load,
    filesystem_of,
    free_port,
    relay_command,
    require_status,
    write_config,
)

NAME = "ingest"
TARGET = 0.5  # relay / baseline, from the issue
# The issue wants ingest measured with 5 forwarders subscribed: 5 `[[forwarders]]`
# tables here, pointing at local sinks that answer 2xx so that the dispatcher really
# delivers during the rounds. Until that is wired up, none are configured.
FORWARDERS: list[dict[str, Any]] = []


def run(opts: Options) -> list[Result]:
    """Measure relay and the baseline in alternating rounds; check relay's durability."""
    with TemporaryDirectory(prefix="relay-bench-ingest-") as tmp:
        work = Path(tmp)
        token = "bench-" + secrets.token_urlsafe(24)
        db = work / "relay.db"
        relay = _relay_server(work, db, token)
        baseline = _baseline_server(work)
        with relay, baseline:
            loads = {
                "relay": _load(relay.port, token, opts),
                "baseline": _load(baseline.port, "", opts),
            }
            warmup, rounds = _measure(opts, work, loads)
            code = relay.stop()
        if code != 0:
            raise BenchError(f"relay exited with {code} on SIGTERM:\n{relay.log_tail()}")
        created = sum(o.count(201) for o in [warmup["relay"], *rounds["relay"]])
        rows = _count_rows(db)
        fs = filesystem_of(work)
    if rows != created:
        raise BenchError(f"relay answered 201 {created} times but stored {rows} deployments")
    return [_result(opts, rounds, rows, fs)]


def _relay_server(work: Path, db: Path, token: str) -> Server:
    port = free_port()
    config = work / "relay.toml"
    write_config(config, db=db, port=port, token=token, forwarders=FORWARDERS)
    return Server("relay", [*relay_command(), "serve", "--config", str(config)], port, work)


def _baseline_server(work: Path) -> Server:
    port = free_port()
    argv = [sys.executable, str(BENCH_DIR / "_baseline_server.py"), str(port)]
    return Server("baseline", argv, port, work)


def _load(port: int, token: str, opts: Options) -> Load:
    return event_load(port, token, opts.requests, opts.concurrency)


def _measure(
    opts: Options, work: Path, loads: dict[str, Load]
) -> tuple[dict[str, Outcome], dict[str, list[Outcome]]]:
    """A warm-up each, then rounds; who goes first alternates so drift hits both alike."""
    warmup = {
        name: require_status(name, opts.load.run(replace(load, requests=opts.warmup), work))
        for name, load in loads.items()
    }
    rounds: dict[str, list[Outcome]] = {name: [] for name in loads}
    for i in range(opts.rounds):
        order = list(loads) if i % 2 == 0 else list(reversed(loads))
        for name in order:
            rounds[name].append(require_status(name, opts.load.run(loads[name], work)))
    return warmup, rounds


def _count_rows(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        count: int = conn.execute("SELECT COUNT(*) FROM deployments").fetchone()[0]
    return count


def _result(opts: Options, rounds: dict[str, list[Outcome]], rows: int, fs: str) -> Result:
    warning = " (tmpfs: fsync costs nothing, point TMPDIR at a disk)" if fs == "tmpfs" else ""
    return Result(
        benchmark=NAME,
        metric="durable events/s",
        relay=[o.rate(201) for o in rounds["relay"]],
        baseline=[o.rate(201) for o in rounds["baseline"]],
        target=TARGET,
        notes=[
            f"load generator: {opts.load.name}",
            f"{opts.concurrency} connections, {opts.requests} requests/round, "
            f"{opts.rounds} rounds each after a {opts.warmup}-request warm-up, interleaved",
            f"durability: {rows} rows in deployments = {rows} answers 201",
            f"SQLite file on {fs}{warning}",
            f"forwarders configured: {len(FORWARDERS)} (the issue wants 5)",
            "relay logs at info, its default: one access-log line per request (to a file)",
        ],
    )
