"""Soak: under a steady stream of deployments, retention keeps the SQLite database bounded.

Runs `relay serve` on a temporary SQLite file with a few seconds of retention for every
kind of row and one webhook forwarder pointing at a local Standard Webhooks receiver,
posts deployments at a steady rate, and samples every second the row counts and the
sizes of the database file and its write-ahead log.

"Bounded" means: once the warm-up is over (the first rows have aged out and pruning
keeps pace), the largest main file and the largest row count of the second half of the
run are at most `--bound` times those of the first half. The WAL's size is a
high-water mark, not a trend (SQLite reuses it from the start once it is copied into
the main file, and relay's writer forces that once it reaches CATCH_UP_FRAMES pages),
so it is judged against a fixed cap instead: twice that length.

    python scripts/soak.py [--duration 60] [--rate 100]

Exits 1 when the bound is broken, or when no deployment was accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if str(ROOT / "bench") not in sys.path:
    sys.path.insert(0, str(ROOT / "bench"))

from crashloop import Server  # noqa: E402

from relay.standins.webhook import WebhookReceiver  # noqa: E402
from relay.store.sqlite.checkpoint import CATCH_UP_FRAMES  # noqa: E402

TOKEN = "soak-test-token"
SECRET = "whsec_" + base64.b64encode(b"soak-test-webhook-secret-32byte!").decode()
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
TABLES = ("deployments", "events", "deliveries", "attempts")
WAL_CAP_BYTES = 2 * CATCH_UP_FRAMES * (4096 + 24)  # frames of a 4 KiB page, headers
COMPONENTS = 5  # retention keeps the latest deployment of each; few keeps that floor low


@dataclass
class Sample:
    """One reading, `t` seconds after posting started."""

    t: float
    posted: int
    rows: dict[str, int]
    db_bytes: int
    wal_bytes: int


def write_config(path: Path, db: Path, hook_url: str, retention: str) -> None:
    """A relay.toml: SQLite at `db`, every retention at `retention`, one webhook forwarder."""
    lines = [
        "[server]",
        'host = "127.0.0.1"',
        "[storage]",
        f"url = {json.dumps(f'sqlite:///{db}')}",
        "[storage.retention]",
        *(
            f"{key} = {json.dumps(retention)}"
            for key in ("attempts", "deliveries", "events", "deployments", "idempotency_keys")
        ),
        'interval = "1s"',
        "batch_size = 200",
        "[logging]",
        'format = "json"',
        'level = "warning"',
        "[delivery]",
        'poll_interval = "0.5s"',
        'shutdown_grace = "1s"',
        "[security]",
        'allow_networks = ["127.0.0.0/8"]',  # the receiver is on loopback
        "[[tokens]]",
        'name = "soak"',
        f"token = {json.dumps(TOKEN)}",
        "[[forwarders]]",
        'name = "hook"',
        'type = "webhook"',
        f"url = {json.dumps(hook_url)}",
        f"secret = {json.dumps(SECRET)}",
        'timeout = "2s"',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class Poster:
    """POSTs deployments at a steady rate; counts what was answered 201 and what was not."""

    def __init__(self, http: aiohttp.ClientSession, url: str, rate: float) -> None:
        self.http, self.url, self.rate = http, url, rate
        self.posted = self.failed = 0
        self._slots = asyncio.Semaphore(64)  # a slow server slows us, not our memory

    async def run(self, duration: float) -> None:
        """Post for `duration` seconds, keeping to `rate` a second on average."""
        start = time.monotonic()
        sent = 0
        tasks: set[asyncio.Task[None]] = set()
        while (elapsed := time.monotonic() - start) < duration:
            due = int(elapsed * self.rate) - sent
            for _ in range(due):
                await self._slots.acquire()
                task = asyncio.create_task(self._post(sent))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(0.01)
        await asyncio.gather(*tasks)

    async def _post(self, n: int) -> None:
        body = {"version": f"1.0.{n}", "stage": "production", "result": "success"}
        url = f"{self.url}/components/soak-{n % COMPONENTS}/deployments"
        try:
            async with self.http.post(url, json=body, headers=HEADERS) as response:
                if response.status == 201:
                    self.posted += 1
                else:
                    self.failed += 1
        except (TimeoutError, aiohttp.ClientError):
            self.failed += 1
        finally:
            self._slots.release()


def read_sample(db: Path, t: float, posted: int) -> Sample:
    """Row counts (read-only, like any reader next to relay) and file sizes."""
    uri = f"file:{db}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=5) as conn:
        rows = {n: conn.execute(f"SELECT COUNT(*) FROM {n}").fetchone()[0] for n in TABLES}
    conn.close()
    wal = db.with_name(db.name + "-wal")
    return Sample(t, posted, rows, db.stat().st_size, wal.stat().st_size if wal.exists() else 0)


async def sample_every_second(
    db: Path, poster: Poster, samples: list[Sample], stop: asyncio.Event, out: TextIO
) -> None:
    """Append one Sample a second until `stop`, printing each as a table row."""
    print(
        f"{'t_s':>5} {'posted':>7} {'deploys':>8} {'events':>7} {'deliveries':>10} "
        f"{'attempts':>8} {'db_kib':>8} {'wal_kib':>8}",
        file=out,
    )
    start = time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):  # a second passed: time for a sample
            await asyncio.wait_for(stop.wait(), 1.0)
        t = time.monotonic() - start
        s = await asyncio.to_thread(read_sample, db, t, poster.posted)
        samples.append(s)
        r = s.rows
        print(
            f"{s.t:5.0f} {s.posted:7d} {r['deployments']:8d} {r['events']:7d} "
            f"{r['deliveries']:10d} {r['attempts']:8d} {s.db_bytes // 1024:8d} "
            f"{s.wal_bytes // 1024:8d}",
            file=out,
            flush=True,
        )


def judge(samples: list[Sample], warmup: float, bound: float) -> dict[str, Any]:
    """Compare the second half after warm-up with the first; the figures and a verdict."""
    steady = [s for s in samples if s.t >= warmup]
    if len(steady) < 4:
        return {"ok": False, "reason": "too few samples after the warm-up"}
    first, second = steady[: len(steady) // 2], steady[len(steady) // 2 :]

    def peak(part: list[Sample], key: str) -> int:
        if key == "db":
            return max(s.db_bytes for s in part)
        return max(s.rows[key] for s in part)

    figures: dict[str, Any] = {}
    broken = []
    for key in ("db", "events", "deliveries", "deployments"):
        a, b = peak(first, key), peak(second, key)
        figures[key] = (a, b)
        if b > bound * max(a, 1):
            broken.append(f"{key}: {b} > {bound} x {a}")
    wal = max(s.wal_bytes for s in samples)
    figures["wal"] = wal
    if wal > WAL_CAP_BYTES:
        broken.append(f"wal: {wal} > {WAL_CAP_BYTES}")
    figures["ok"] = not broken
    figures["reason"] = "; ".join(broken) or "bounded"
    return figures


async def run(
    duration: float, rate: float, warmup: float, bound: float, retention: str, out: TextIO
) -> dict[str, Any]:
    """The whole soak in a temporary directory; its figures and verdict."""
    receiver = WebhookReceiver(SECRET)
    await receiver.start()
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="relay-soak-") as tmp:
        db = Path(tmp) / "relay.db"
        config = Path(tmp) / "relay.toml"
        write_config(config, db, receiver.endpoint, retention)
        server = Server(config, Path(tmp) / "relay.log")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            try:
                await server.start(http)
                poster = Poster(http, server.url, rate)
                stop = asyncio.Event()
                sampler = asyncio.create_task(sample_every_second(db, poster, samples, stop, out))
                await poster.run(duration)
                stop.set()
                await sampler
            finally:
                await server.stop()
                await receiver.stop()
    figures = judge(samples, warmup, bound)
    figures.update(
        duration_s=duration,
        posted=poster.posted,
        failed=poster.failed,
        delivered=len(receiver.events),
    )
    if poster.posted == 0:
        figures.update(ok=False, reason="no deployment was accepted")
    for key, value in figures.items():
        print(f"{key:12} {value}", file=out)
    return figures


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point: 0 when the database stayed within the bound, 1 otherwise."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of posting (60)")
    parser.add_argument("--rate", type=float, default=100.0, help="deployments a second (100)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds ignored at first (duration / 4)"
    )
    parser.add_argument("--bound", type=float, default=1.5, help="allowed growth factor (1.5)")
    parser.add_argument("--retention", default="3s", help="every retention setting (3s)")
    args = parser.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else args.duration / 4
    figures = asyncio.run(
        run(args.duration, args.rate, warmup, args.bound, args.retention, out or sys.stdout)
    )
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
