"""Run relay's benchmarks and print one table (what `make bench` calls).

    .venv/bin/python bench/run.py                # every benchmark
    .venv/bin/python bench/run.py ingest         # some of them, by module name
    .venv/bin/python bench/run.py --quick        # the long ones scaled down (fanout, PG)
    .venv/bin/python bench/run.py --help         # rounds, requests, connections, loader

Every module of bench/ whose name does not start with `_` is a benchmark: it has
`run(options) -> list[Result]`. Each figure is the median of interleaved rounds of
relay and of its baseline measured in this run on this machine, and the ratio is
relay / baseline (a figure without a baseline, like a latency budget, is judged on
its own median). The load generator is wrk when it is on PATH (installed with
apt-get when missing and running as root, unless --no-install), else a Python client.

Exit status: 0 when every benchmark produced its figures, even when a target is
MISSED; 1 when a benchmark failed (an error, a non-201 answer, a lost write).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from collections.abc import Sequence

from _harness import (
    BENCH_DIR,
    BenchError,
    LoadGenerator,
    Options,
    PythonLoad,
    Result,
    WrkLoad,
    find_wrk,
)

# DESIGN.md §10's order; a benchmark not listed runs after these, by name.
ORDER = ("ingest", "fanout", "pipeline", "outage", "latency", "isolation", "memory")
COLUMNS = ("benchmark", "metric", "relay", "baseline", "ratio", "target", "result")


def discover() -> list[str]:
    """Names of the benchmark modules in bench/."""
    names = [p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_")]
    names = [n for n in names if n not in ("run", "crashloop")]  # crashloop: correctness
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per server")
    parser.add_argument("--requests", type=int, default=4000, help="requests per round")
    parser.add_argument("--warmup", type=int, default=1000, help="warm-up requests per server")
    parser.add_argument("--concurrency", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="scale the long benchmarks down (fanout: a 4,000-event backlog, not 20,000, "
        "and 800-event PostgreSQL rounds, not 2,000; ingest: PostgreSQL in 3 rounds only)",
    )
    parser.add_argument(
        "--outage-deliveries",
        type=int,
        default=1_000_000,
        help="pending deliveries outage.py fills while the target is down (default "
        "1,000,000; try 50,000 while developing)",
    )
    return parser.parse_args(argv)


def choose_loadgen(args: argparse.Namespace) -> LoadGenerator:
    if args.loadgen == "python":
        return PythonLoad()
    path = find_wrk(install=not args.no_install)
    if path:
        return WrkLoad(path)
    if args.loadgen == "wrk":
        raise BenchError("--loadgen wrk: wrk is not on PATH and could not be installed")
    return PythonLoad()


def run_one(name: str, opts: Options) -> list[Result] | None:
    """The results of one benchmark; None (after saying why) when it failed."""
    started = time.monotonic()
    print(f"running {name}…", file=sys.stderr, flush=True)
    try:
        results: list[Result] = importlib.import_module(name).run(opts)
    except BenchError as exc:
        print(f"ERROR {name}: {exc}", file=sys.stderr)
        return None
    except Exception:
        print(f"ERROR {name}:\n{traceback.format_exc()}", file=sys.stderr)
        return None
    print(f"{name} took {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return results


def fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def table_row(r: Result) -> tuple[str, ...]:
    base, ratio = r.baseline_figure, r.ratio
    return (
        r.benchmark,
        f"{r.metric} ({r.summary})",
        fmt(r.relay_figure),
        "-" if base is None else fmt(base),
        "-" if ratio is None else f"{ratio:.2f}",
        _target(r),
        {None: "-", True: "met", False: "MISSED"}[r.met],
    )


def _target(r: Result) -> str:
    if r.target is None:
        return "-"
    sign = ">=" if r.higher_is_better else "<="
    # A ratio keeps two decimals; a figure of its own is shown like the figures.
    return f"{sign} {r.target:.2f}" if r.baseline else f"{sign} {fmt(r.target)}"


def print_grid(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("-+-".join("-" * w for w in widths))


def print_rounds(r: Result) -> None:
    if not r.baseline:
        print(f"\n{r.benchmark}: {r.metric} per round (no baseline)")
        print_grid([("round", "relay"), *((str(i), fmt(v)) for i, v in enumerate(r.relay, 1))])
    else:
        print(f"\n{r.benchmark}: {r.metric} per round (relay/baseline pairs, in run order)")
        rows: list[tuple[str, ...]] = [("round", "relay", "baseline", "ratio")]
        for i, (mine, base) in enumerate(zip(r.relay, r.baseline, strict=True), start=1):
            rows.append((str(i), fmt(mine), fmt(base), f"{mine / base:.2f}"))
        print_grid(rows)
    for note in r.notes:
        print(f"  {note}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    known = discover()
    unknown = [n for n in args.names if n not in known]
    if unknown:
        print(f"no such benchmark: {', '.join(unknown)} (have: {', '.join(known)})")
        return 2
    try:
        loadgen = choose_loadgen(args)
    except BenchError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    opts = Options(
        loadgen,
        args.rounds,
        args.requests,
        args.warmup,
        args.concurrency,
        args.quick,
        args.outage_deliveries,
    )
    print(f"load generator: {loadgen.name}", flush=True)
    outcomes = {name: run_one(name, opts) for name in args.names or known}
    results = [r for rs in outcomes.values() if rs for r in rs]
    if results:
        print()
        print_grid([COLUMNS, *(table_row(r) for r in results)])
        for line in dict.fromkeys(f"{r.benchmark}: {s}" for r in results for s in r.skipped):
            print(line)
        for r in results:
            print_rounds(r)
    failed = [name for name, rs in outcomes.items() if rs is None]
    if failed:
        print(f"\nFAILED: {', '.join(failed)} (see above)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
