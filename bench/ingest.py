"""Ingest: durable events/s of `POST /components/{slug}/deployments`, against bare aiohttp.

Run it with every other benchmark (`make bench`, i.e. `.venv/bin/python bench/run.py`)
or alone (`.venv/bin/python bench/run.py ingest`); `bench/run.py --help` lists the knobs.

relay serves a fresh SQLite file in a temporary directory (TMPDIR; keep it on a real
disk, since tmpfs makes fsync free) with a token and 5 webhook forwarders from a
temporary config, with `--no-dispatch`: each 201 also wrote the event's 5 outbox rows,
and no delivery competes with the API during the rounds (fanout.py measures those). The baseline
is bench/_baseline_server.py: one aiohttp handler that only parses the JSON body. Both
run as subprocesses on loopback ports and get the same load (same generator, requests
and connections) in alternating rounds after a warm-up; the table quotes medians.
Each 201 of relay is durable (the answer waits for the group commit), so the 201s
per second are durable events/s; after the rounds relay is stopped and the rows of
`deployments` are counted, and must equal the 201s.

The same rounds also measure relay on PostgreSQL (bench/_pg.py: a durable throwaway
server), with one instance and with three `relay serve` on one database behind a
round-robin split of the load (wrk loads one URL: one wrk per instance, started
together, with a third of the connections and requests each, the 201s added up and
timed from the first request to the last answer). Every PostgreSQL round starts from a
fresh database (dropped and created) and fresh instances, warmed up like the others;
after it the instances are stopped and the rows counted against that round's 201s. The
rounds of all four (baseline, SQLite, PostgreSQL x1, x3) rotate, and each ratio is
against the same baseline rounds. Without PostgreSQL the PG rows are left out, and the
SQLite row's notes say why.
"""

from __future__ import annotations

import secrets
import sqlite3
import sys
import time
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from statistics import median
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
    Together,
    event_load,
    filesystem_of,
    free_port,
    free_ports,
    relay_command,
    require_status,
    spread_load,
    write_config,
)
from _pg import POOL, Postgres, postgres, skipped
from _proc import cpu_seconds

NAME = "ingest"
TARGET = 0.5  # relay / baseline, from the issue
# The issue wants ingest measured with 5 forwarders configured: every accepted event
# then writes 5 outbox rows in its transaction. relay serves with `--no-dispatch` (the
# deliveries wait for a `relay worker`): this figure is the API's, and fan-out is
# measured on its own by fanout.py. The URLs are never called.
FORWARDERS: list[dict[str, Any]] = [
    {
        "name": f"hook-{n}",
        "type": "webhook",
        "url": f"http://127.0.0.1:9/hook-{n}",
        "secret": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    }
    for n in range(1, 6)
]
SERVE = ["serve", "--no-dispatch"]


# relay instances on one PostgreSQL database, one figure each.
PG_INSTANCES = (1, 3)
# --quick: PostgreSQL in the first rounds only (each starts a database and instances).
QUICK_PG_ROUNDS = 3


def pg_rounds_of(opts: Options) -> int:
    return min(opts.rounds, QUICK_PG_ROUNDS) if opts.quick else opts.rounds


def run(opts: Options) -> list[Result]:
    """Measure relay and the baseline in rotating rounds; check relay's durability."""
    with TemporaryDirectory(prefix="relay-bench-ingest-") as tmp, postgres() as pg:
        work = Path(tmp)
        token = "bench-" + secrets.token_urlsafe(24)
        pg_rounds = [PgRounds(n, pg, work, token) for n in PG_INSTANCES if isinstance(pg, Postgres)]
        db = work / "relay.db"
        relay = _relay_server(work, db, token)
        baseline = _baseline_server(work)
        with relay, baseline:
            loads = {
                "relay": _load(relay.port, token, opts),
                "baseline": _load(baseline.port, "", opts),
            }
            pids = {"relay": relay.pid, "baseline": baseline.pid}
            warmup, rounds = _measure(opts, work, loads, pg_rounds, pids)
            code = relay.stop()
        if code != 0:
            raise BenchError(f"relay exited with {code} on SIGTERM:\n{relay.log_tail()}")
        created = sum(o.count(201) for o in [warmup["relay"], *rounds["relay"]])
        rows, outbox = _count_rows(db)
        if rows != created:
            raise BenchError(f"relay answered 201 {created} times but stored {rows} deployments")
        _check_outbox("relay", rows, outbox)
        fs = filesystem_of(work)
        if not isinstance(pg, Postgres):
            note = skipped(pg)
            return [replace(_result(opts, rounds, rows, fs, [note]), skipped=[note])]
        about = pg.describe()
        pg_results = [r.result(opts, rounds["baseline"], about) for r in pg_rounds]
    return [_result(opts, rounds, rows, fs, ["PostgreSQL: the rows below"]), *pg_results]


class PgRounds:
    """relay on PostgreSQL with `instances` instances: one fresh database and fresh
    processes per round; the durability check after each."""

    def __init__(self, instances: int, pg: Postgres, work: Path, token: str) -> None:
        self.instances, self.pg, self.work, self.token = instances, pg, work, token
        self.database = f"bench_ingest_{instances}"
        self.outcomes: list[Outcome] = []
        self.rows = 0
        self.startup: list[float] = []
        self.analyzed = 0  # rounds in which autovacuum had analyzed deployments

    @property
    def name(self) -> str:
        return f"relay-pg{self.instances}"

    def round(self, opts: Options) -> Outcome:
        url = self.pg.fresh(self.database)
        servers = []
        for k, port in enumerate(free_ports(self.instances), start=1):
            config = self.work / f"{self.name}-{k}.toml"
            write_config(
                config, db=url, port=port, token=self.token, forwarders=FORWARDERS, storage=POOL
            )
            argv = [*relay_command(), *SERVE, "--config", str(config)]
            servers.append(Server(f"{self.name}-{k}", argv, port, self.work))
        started = time.monotonic()
        with Together(servers) as group:
            self.startup.append(time.monotonic() - started)
            load = _load(group.ports[0], self.token, opts)
            warm = replace(load, requests=opts.warmup)
            warmup = opts.load.run_many(spread_load(warm, group.ports), self.work)
            require_status(f"{self.name} (warm-up)", warmup)
            outcome = opts.load.run_many(spread_load(load, group.ports), self.work)
            require_status(self.name, outcome)
            group.stop_cleanly()
        rows = self.pg.scalar(self.database, "SELECT COUNT(*) FROM deployments")
        _check_outbox(self.name, rows, self.pg.scalar(self.database, OUTBOX_COUNT))
        self.pg.settle()
        created = warmup.count(201) + outcome.count(201)
        if rows != created:
            raise BenchError(
                f"{self.name} answered 201 {created} times but stored {rows} deployments"
            )
        self.rows += rows
        self.analyzed += self.pg.analyzed(self.database, "deployments")
        self.outcomes.append(outcome)
        return outcome

    def result(self, opts: Options, baseline: list[Outcome], about: str) -> Result:
        self.pg.drop(self.database)
        plural = "instance" if self.instances == 1 else "instances"
        spread = (
            f"{self.instances} `relay serve` on one database, the load split between them: "
            f"{opts.load.spread}"
            if self.instances > 1
            else "one `relay serve`"
        )
        return Result(
            benchmark=NAME,
            metric=f"durable events/s, PostgreSQL, {self.instances} {plural}",
            relay=[o.rate(201) for o in self.outcomes],
            # The baseline's rounds that ran alongside these (all of them, but with --quick).
            baseline=[o.rate(201) for o in baseline[: len(self.outcomes)]],
            target=TARGET,
            notes=[
                f"{spread}; baseline: the same bench/_baseline_server.py rounds as the "
                f"SQLite row (one process){', the first ones' if opts.quick else ''}",
                f"{len(self.outcomes)} rounds"
                + (" (--quick: in the first rounds only)" if opts.quick else "")
                + "; each: a fresh database (DROP/CREATE), fresh instances (start-up "
                f"{median(self.startup):.1f} s, not timed), a {opts.warmup}-request warm-up, "
                f"then {opts.requests} requests over {opts.concurrency} connections in all",
                f"durability: in every round the rows in deployments = its answers 201 "
                f"({self.rows} in all, warm-ups included)",
                f"planner statistics of deployments (autovacuum's ANALYZE) by the end of the "
                f"round: {self.analyzed} of {len(self.outcomes)} rounds (a fresh database "
                "has none, and some of relay's queries pick slow plans without them)",
                f"{about}; pool per instance {POOL['pool_min']}-{POOL['pool_max']} "
                "connections (relay's default)",
            ],
        )


def _relay_server(work: Path, db: Path, token: str) -> Server:
    port = free_port()
    config = work / "relay.toml"
    write_config(config, db=db, port=port, token=token, forwarders=FORWARDERS)
    return Server("relay", [*relay_command(), *SERVE, "--config", str(config)], port, work)


def _baseline_server(work: Path) -> Server:
    port = free_port()
    argv = [sys.executable, str(BENCH_DIR / "_baseline_server.py"), str(port)]
    return Server("baseline", argv, port, work)


def _load(port: int, token: str, opts: Options) -> Load:
    return event_load(port, token, opts.requests, opts.concurrency)


# CPU seconds (user + system) of each server during its measured rounds.
CPU: dict[str, float] = {}


def _measure(
    opts: Options,
    work: Path,
    loads: dict[str, Load],
    pg_rounds: list[PgRounds],
    pids: dict[str, int],
) -> tuple[dict[str, Outcome], dict[str, list[Outcome]]]:
    """A warm-up each, then rounds; who goes first rotates so drift hits all alike (the
    PostgreSQL rounds warm up in each round, since each starts from scratch)."""
    warmup = {
        name: require_status(name, opts.load.run(replace(load, requests=opts.warmup), work))
        for name, load in loads.items()
    }
    by_name = {r.name: r for r in pg_rounds}
    names = [*loads, *by_name]
    rounds: dict[str, list[Outcome]] = {name: [] for name in names}
    for i in range(opts.rounds):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            if name in by_name:
                if i < pg_rounds_of(opts):
                    rounds[name].append(by_name[name].round(opts))
            else:
                before = cpu_seconds([pids[name]])
                rounds[name].append(require_status(name, opts.load.run(loads[name], work)))
                CPU[name] = CPU.get(name, 0.0) + cpu_seconds([pids[name]]) - before
    return warmup, rounds


OUTBOX_COUNT = "SELECT COUNT(*) FROM deliveries"


def _count_rows(db: Path) -> tuple[int, int]:
    """Deployments and outbox rows in relay's SQLite file."""
    with closing(sqlite3.connect(db)) as conn:
        rows: int = conn.execute("SELECT COUNT(*) FROM deployments").fetchone()[0]
        outbox: int = conn.execute(OUTBOX_COUNT).fetchone()[0]
    return rows, outbox


def _check_outbox(name: str, rows: int, outbox: int) -> None:
    """Every stored deployment has its delivery row per configured forwarder."""
    if outbox != rows * len(FORWARDERS):
        raise BenchError(
            f"{name} stored {rows} deployments but {outbox} deliveries "
            f"({len(FORWARDERS)} forwarders configured)"
        )


def _cpu_us(rounds: dict[str, list[Outcome]], name: str) -> float:
    answered = sum(o.count(201) for o in rounds[name])
    return CPU.get(name, 0.0) / max(answered, 1) * 1e6


def _result(
    opts: Options, rounds: dict[str, list[Outcome]], rows: int, fs: str, more: list[str]
) -> Result:
    warning = " (tmpfs: fsync costs nothing, point TMPDIR at a disk)" if fs == "tmpfs" else ""
    return Result(
        benchmark=NAME,
        metric="durable events/s, SQLite",
        relay=[o.rate(201) for o in rounds["relay"]],
        baseline=[o.rate(201) for o in rounds["baseline"]],
        target=TARGET,
        notes=[
            f"load generator: {opts.load.name}",
            f"{opts.concurrency} connections, {opts.requests} requests/round, "
            f"{opts.rounds} rounds each after a {opts.warmup}-request warm-up, in rotating "
            "order (with the PostgreSQL rounds, when there are some)",
            f"durability: {rows} rows in deployments = {rows} answers 201",
            f"SQLite file on {fs}{warning}",
            f"{len(FORWARDERS)} webhook forwarders configured: every 201 also wrote "
            f"{len(FORWARDERS)} outbox rows (checked: deliveries = {len(FORWARDERS)} x "
            "deployments); `relay serve --no-dispatch`, so no delivery runs during the rounds "
            "(fanout.py measures those)",
            "relay logs at info, its default: one access-log line per request (to a file)",
            f"CPU per 201 (user+system of the server process, measured rounds): relay "
            f"{_cpu_us(rounds, 'relay'):,.0f} µs, baseline {_cpu_us(rounds, 'baseline'):,.0f} µs",
            *more,
        ],
    )
