"""wrk on a schedule (bench/_paced.lua): R requests per second, or all at once, and the
201's latency percentiles from wrk's own histogram."""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from _harness import BENCH_DIR, ROUND_TIMEOUT_S, BenchError, Load, Options, WrkLoad, read_wrk

PACED_LUA = BENCH_DIR / "_paced.lua"


@dataclass(frozen=True)
class Paced:
    """What one paced wrk run saw."""

    sent: int
    statuses: dict[int, int]
    seconds: float  # first request to last answer
    started: float  # CLOCK_MONOTONIC of the first request
    behind: float  # the worst slip of a request behind its slot, in s
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def achieved(self) -> float:
        """Requests per second actually sent."""
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    def count(self, status: int) -> int:
        return self.statuses.get(status, 0)


def wrk_path(opts: Options) -> str:
    """The wrk binary; BenchError when the run has none (a paced load needs it)."""
    if not isinstance(opts.load, WrkLoad):
        raise BenchError("this benchmark needs wrk (its schedule and latency come from it)")
    return opts.load.path


def run_paced(
    wrk: str, load: Load, rate: float, workdir: Path, timeout: float = ROUND_TIMEOUT_S * 3
) -> Paced:
    """Send `load.requests` requests at `rate` per second (0: all at once) over
    `load.concurrency` connections and wait for every answer."""
    body_file = workdir / "paced-body.json"
    body_file.write_bytes(load.body)
    headers = [arg for k, v in load.headers.items() for arg in ("-H", f"{k}: {v}")]
    argv = [
        wrk,
        "-t1",
        f"-c{load.concurrency}",
        f"-d{int(timeout)}s",
        "--timeout=30s",
        f"-s{PACED_LUA}",
        *headers,
        load.url,
        "--",
        f"{rate:.3f}",
        str(load.requests),
        str(body_file),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        statuses, done, seen = read_wrk(proc)
        proc.send_signal(signal.SIGINT)  # wrk sleeps for its whole -d otherwise
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    latency = next((ln.split()[1:] for ln in rest.splitlines() if ln.startswith("BENCH_LAT")), None)
    if done is None or latency is None:
        raise BenchError(f"wrk did not finish its {load.requests} requests:\n{seen}{rest}")
    first, last, sent, received, behind = (float(x) for x in done)
    if int(sent) != load.requests or int(received) != load.requests:
        raise BenchError(f"wrk sent {sent:.0f}, received {received:.0f}, of {load.requests}")
    p50, p90, p99, top = (int(x) / 1000 for x in latency)
    return Paced(int(sent), statuses, last - first, first, behind, p50, p90, p99, top)
