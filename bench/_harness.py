"""Plumbing shared by the benchmarks: results, server subprocesses, load generators.

Modules whose name starts with `_` are helpers; `bench/run.py` runs every other module.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
QUOTA_LUA = BENCH_DIR / "_quota.lua"
PYLOAD = BENCH_DIR / "_pyload.py"

# One round must end well within this; it only bounds a round that hangs.
ROUND_TIMEOUT_S = 60
READY_TIMEOUT_S = 20.0

# What the benchmarks post to relay: one new deployment per request.
SLUG = "bench-api"
ROUTE = f"/components/{SLUG}/deployments"
BODY = {
    "version": "v1.2.3",
    "result": "success",
    "stage": "production",
    "meta_data": {"commit": "4f2a9c1", "pipeline": "build-1234", "url": "https://ci.example/1234"},
}


class BenchError(Exception):
    """A benchmark could not produce a trustworthy figure (not a missed target)."""


@dataclass(frozen=True)
class Result:
    """One line of the table: per-round figures of relay and of its baseline.

    Without a baseline (an empty list) the figure stands alone and `target` applies to
    relay's own figure (a latency budget in ms, say); `target=None` only reports it.
    """

    benchmark: str
    metric: str
    relay: list[float]
    baseline: list[float]
    target: float | None  # on the ratio relay / baseline, or on relay's median alone
    higher_is_better: bool = True
    notes: list[str] = field(default_factory=list)
    # Rows that could not be measured and why (bench/run.py prints them under the table).
    skipped: list[str] = field(default_factory=list)
    # Set when the figure is not the median of the rounds but taken over the samples of
    # all rounds at once (a percentile): (relay, baseline or None).
    pooled: tuple[float, float | None] | None = None

    @property
    def summary(self) -> str:
        return "all rounds pooled" if self.pooled else "median"

    @property
    def relay_figure(self) -> float:
        return self.pooled[0] if self.pooled else statistics.median(self.relay)

    @property
    def baseline_figure(self) -> float | None:
        if self.pooled:
            return self.pooled[1]
        return statistics.median(self.baseline) if self.baseline else None

    @property
    def ratio(self) -> float | None:
        base = self.baseline_figure
        return self.relay_figure / base if base is not None else None

    @property
    def judged(self) -> float:
        """What the target is compared with: the ratio, or relay's median alone."""
        ratio = self.ratio
        return self.relay_figure if ratio is None else ratio

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.judged >= self.target if self.higher_is_better else self.judged <= self.target


@dataclass(frozen=True)
class Load:
    """A round of load: `requests` POSTs of `body` over `concurrency` keep-alive connections."""

    url: str
    headers: dict[str, str]
    body: bytes
    requests: int
    concurrency: int


@dataclass(frozen=True)
class Outcome:
    """What a load generator saw during one round."""

    sent: int
    statuses: dict[int, int]
    seconds: float  # first request sent to last answer received
    started: float = 0.0  # time.monotonic() (CLOCK_MONOTONIC) of the first request

    def count(self, status: int) -> int:
        return self.statuses.get(status, 0)

    def rate(self, status: int) -> float:
        """Answers with `status` per second."""
        return self.count(status) / self.seconds


class LoadGenerator(Protocol):
    name: str
    # How run_many() spreads its loads over their servers (for the notes).
    spread: str

    def run(self, load: Load, workdir: Path) -> Outcome: ...

    def run_many(self, loads: Sequence[Load], workdir: Path) -> Outcome:
        """The loads at once, one per server (several relay instances); one Outcome."""
        ...


def spread_load(load: Load, ports: Sequence[int]) -> list[Load]:
    """`load` cut into one load per port: its requests and connections split evenly, as
    a round-robin balancer in front of those servers would split them."""
    parts = len(ports)
    if load.concurrency < parts:
        raise BenchError(f"{load.concurrency} connections cannot reach {parts} servers")
    url = urlsplit(load.url)
    return [
        replace(
            load,
            url=urlunsplit(url._replace(netloc=f"{url.hostname}:{port}")),
            requests=split(load.requests, parts)[i],
            concurrency=split(load.concurrency, parts)[i],
        )
        for i, port in enumerate(ports)
    ]


def combine(outcomes: Sequence[Outcome]) -> Outcome:
    """Loads that ran side by side as one: statuses added up, timed from the first
    request of any to the last answer of any."""
    statuses: dict[int, int] = {}
    for o in outcomes:
        for code, n in o.statuses.items():
            statuses[code] = statuses.get(code, 0) + n
    started = min(o.started for o in outcomes)
    ended = max(o.started + o.seconds for o in outcomes)
    return Outcome(sum(o.sent for o in outcomes), statuses, ended - started, started)


def split(total: int, parts: int) -> list[int]:
    """`total` in `parts` near-equal integers, the larger first."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


@dataclass(frozen=True)
class Options:
    """Knobs every benchmark shares (set by bench/run.py's command line)."""

    load: LoadGenerator
    rounds: int = 5
    requests: int = 4000
    warmup: int = 1000
    concurrency: int = 32
    quick: bool = False  # scale the longest benchmarks down (each says so in its notes)
    outage_deliveries: int = 1_000_000  # pending deliveries outage.py fills


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(n: int) -> list[int]:
    """`n` distinct free loopback ports (free_port() may hand one out twice in a row)."""
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def child_env() -> dict[str, str]:
    """The environment of a server: RELAY_* variables removed, because they would
    override the benchmark's config file (a RELAY_STORAGE__URL would even move the
    database)."""
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("RELAY_")}


def relay_command() -> list[str]:
    """The `relay` console script of the interpreter running the benchmark (the venv)."""
    script = Path(sys.executable).parent / "relay"
    return [str(script)] if script.exists() else [sys.executable, "-m", "relay.cli"]


def write_config(
    path: Path,
    *,
    db: Path | str,
    port: int,
    token: str,
    forwarders: Sequence[Mapping[str, Any]] = (),
    storage: Mapping[str, Any] | None = None,
    scopes: Sequence[str] = ("events:write", "events:read"),
) -> None:
    """A relay config for a benchmark; `db` is a SQLite file (a Path) or a database URL
    (a str), `storage` more `[storage]` keys (pool sizes), `forwarders` become
    `[[forwarders]]` tables."""
    url = f"sqlite:///{db.resolve()}" if isinstance(db, Path) else db
    lines = [
        "[server]",
        'host = "127.0.0.1"',
        f"port = {port}",
        "",
        "[storage]",
        f"url = {_toml(url)}",
        *(f"{k} = {_toml(v)}" for k, v in (storage or {}).items()),
        "",
        '[security]\nallow_networks = ["127.0.0.0/8"]',  # the sinks are on loopback
        "[[tokens]]",
        'name = "bench"',
        f"token = {_toml(token)}",
        f"scopes = {_toml(list(scopes))}",
        'components = ["*"]',
    ]
    for table in forwarders:
        lines += ["", "[[forwarders]]", *(f"{k} = {_toml(v)}" for k, v in table.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _toml(value: Any) -> str:
    # JSON's string escapes are valid TOML basic strings; tables go inline.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, Sequence):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def event_load(port: int, token: str, requests: int, concurrency: int) -> Load:
    """`requests` POSTs of BODY to relay's ingest route (no token: no Authorization)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return Load(
        url=f"http://127.0.0.1:{port}{ROUTE}",
        headers=headers,
        body=json.dumps(BODY).encode(),
        requests=requests,
        concurrency=concurrency,
    )


def require_status(name: str, outcome: Outcome, status: int = 201) -> Outcome:
    """`outcome` when every answer had `status`; BenchError otherwise."""
    # A failed request is cheap to answer: counting it would flatter the server.
    others = {code: n for code, n in outcome.statuses.items() if code != status}
    if others:
        no_answer = " (0: no HTTP answer)" if 0 in others else ""
        raise BenchError(f"{name} answered non-{status} statuses {others}{no_answer}")
    return outcome


class Server:
    """A server subprocess on a loopback port; a context manager that stops it."""

    def __init__(self, name: str, argv: list[str], port: int, workdir: Path) -> None:
        self.name, self.argv, self.port, self.workdir = name, argv, port, workdir
        self.log_path = workdir / f"{name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._signalled = False

    def __enter__(self) -> Server:
        self.spawn()
        self._wait_ready()
        return self

    def spawn(self) -> None:
        """Start the process without waiting for it to be ready."""
        with self.log_path.open("wb") as log:
            # A file, not a pipe: nobody reads a pipe during a round and a full one
            # would block the server's logging, and so the server.
            self._proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, env=child_env()
            )
        self._signalled = False

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise BenchError(f"{self.name} exited at start:\n{self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BenchError(f"{self.name} did not listen on port {self.port}:\n{self.log_tail()}")

    def check_alive(self) -> None:
        """BenchError (with the end of its log) when the process has exited."""
        if self._proc is None or self._proc.poll() is not None:
            raise BenchError(f"{self.name} exited unexpectedly:\n{self.log_tail()}")

    def terminate(self) -> None:
        """SIGTERM (a graceful shutdown) without waiting for the exit; once only, since a
        second signal could cut the shutdown short."""
        if self._proc is not None and self._proc.poll() is None and not self._signalled:
            self._proc.terminate()
            self._signalled = True

    def stop(self) -> int | None:
        """SIGTERM (unless terminate() sent it), then SIGKILL after 15 s; the exit code."""
        proc = self._proc
        if proc is None:
            return None
        self.terminate()
        self._proc = None
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return proc.returncode

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


class Together:
    """Several servers started at once (all spawned, then each waited for) and stopped
    together; a context manager. Started one after the other, the first would already
    work while the last is still importing, and that would count in a timed round."""

    def __init__(self, servers: Sequence[Server]) -> None:
        self.servers = list(servers)

    def __enter__(self) -> Together:
        try:
            for server in self.servers:
                server.spawn()
            for server in self.servers:
                server._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def ports(self) -> list[int]:
        return [server.port for server in self.servers]

    def check_alive(self) -> None:
        for server in self.servers:
            server.check_alive()

    def stop(self) -> dict[str, int | None]:
        """SIGTERM to all at once, then wait for each; their exit codes by name."""
        for server in self.servers:
            server.terminate()
        return {server.name: server.stop() for server in self.servers}

    def stop_cleanly(self) -> None:
        """stop(); BenchError unless every one exited 0 (a graceful shutdown)."""
        codes = self.stop()
        for server in self.servers:
            if codes[server.name] not in (0, None):
                code = codes[server.name]
                raise BenchError(
                    f"{server.name} exited with {code} on SIGTERM:\n{server.log_tail()}"
                )


class Worker(Server):
    """A subprocess without a port (`relay worker`): ready once `ready` is in its log."""

    def __init__(self, name: str, argv: list[str], workdir: Path, ready: str) -> None:
        super().__init__(name, argv, 0, workdir)
        self.ready = ready

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self.check_alive()
            if self.ready in self.log_path.read_text(encoding="utf-8", errors="replace"):
                return
            time.sleep(0.05)
        self.stop()
        raise BenchError(f"{self.name} did not log {self.ready!r}:\n{self.log_tail()}")


class WrkLoad:
    """wrk (C) driven by _quota.lua: cheap enough on 2 cores not to be the bottleneck."""

    spread = "one wrk process per server, all at once, each with its share of the requests"

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = f"{wrk_version(path)} (C, 1 thread, bench/_quota.lua)"

    def run(self, load: Load, workdir: Path) -> Outcome:
        return self.run_many([load], workdir)

    def run_many(self, loads: Sequence[Load], workdir: Path) -> Outcome:
        """wrk can only load one server: one wrk per load, started together; the
        answers added up, timed from the first request of any to the last answer."""
        procs = []
        for i, load in enumerate(loads):
            body_file = workdir / f"wrk-body-{i}.json"
            body_file.write_bytes(load.body)
            procs.append(
                subprocess.Popen(
                    self._argv(load, body_file),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        try:
            return combine(
                [self._finish(proc, load) for proc, load in zip(procs, loads, strict=True)]
            )
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()

    def _finish(self, proc: subprocess.Popen[str], load: Load) -> Outcome:
        statuses, done, seen = read_wrk(proc)
        # wrk sleeps for its whole -d even when every thread has stopped: SIGINT ends it.
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=15)
        if done is None:
            raise BenchError(f"wrk did not finish its {load.requests} requests:\n{seen}{rest}")
        first, last, sent, received = float(done[0]), float(done[1]), int(done[2]), int(done[3])
        if sent != load.requests or received != load.requests:
            raise BenchError(f"wrk sent {sent}, received {received}, expected {load.requests}")
        # _quota.lua's clock is CLOCK_MONOTONIC, time.monotonic()'s on Linux.
        return Outcome(sent=sent, statuses=statuses, seconds=last - first, started=first)

    def _argv(self, load: Load, body_file: Path) -> list[str]:
        headers = [arg for k, v in load.headers.items() for arg in ("-H", f"{k}: {v}")]
        return [
            self.path,
            "-t1",
            f"-c{load.concurrency}",
            f"-d{ROUND_TIMEOUT_S}s",
            "--timeout=30s",
            f"-s{QUOTA_LUA}",
            *headers,
            load.url,
            "--",
            str(load.requests),
            str(body_file),
        ]


def read_wrk(proc: subprocess.Popen[str]) -> tuple[dict[int, int], list[str] | None, str]:
    """wrk's BENCH_STATUS counts and BENCH_DONE fields (None without one), and what it printed."""
    assert proc.stdout is not None
    statuses: dict[int, int] = {}
    seen = ""
    # Ends with BENCH_DONE, or at the latest when wrk's -d runs out and it exits.
    for line in proc.stdout:
        seen += line
        word, *fields = line.split() or [""]
        if word == "BENCH_STATUS":
            statuses[int(fields[0])] = int(fields[1])
        elif word == "BENCH_DONE":
            return statuses, fields, seen
    return statuses, None, seen


def wrk_version(path: str) -> str:
    out = subprocess.run([path, "-v"], capture_output=True, text=True, check=False).stdout
    return " ".join(out.split()[:2]) or "wrk"


class PythonLoad:
    """aiohttp client in its own process: the fallback when wrk is missing. On 2 cores it
    competes with the server for CPU and saturates first, which squeezes ratios to 1."""

    name = "python aiohttp client (fallback: install wrk for trustworthy ratios)"
    spread = (
        "one python client with the servers' URLs, its connections dealt out over them in "
        "turn (requests go to whichever connection is free, not strictly round-robin)"
    )

    def run(self, load: Load, workdir: Path) -> Outcome:
        return self.run_many([load], workdir)

    def run_many(self, loads: Sequence[Load], workdir: Path) -> Outcome:
        spec = {
            "urls": [load.url for load in loads],
            "headers": loads[0].headers,
            "body": loads[0].body.decode("utf-8"),
            "requests": sum(load.requests for load in loads),
            "concurrency": sum(load.concurrency for load in loads),
        }
        data = run_helper(PYLOAD, spec)
        statuses = {int(k): v for k, v in data["statuses"].items()}
        return Outcome(sent=data["sent"], statuses=statuses, seconds=data["seconds"])


def run_helper(script: Path, spec: Mapping[str, Any], timeout: float = ROUND_TIMEOUT_S) -> Any:
    """Run a client script of bench/ in its own process (its own GIL, never the server's)
    with a JSON spec as its argument; the JSON of its last line of output."""
    done = subprocess.run(
        [sys.executable, str(script), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"{script.name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def find_wrk(install: bool) -> str | None:
    """wrk's path; when missing, `apt-get install` it if allowed and running as root."""
    path = shutil.which("wrk")
    if path or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return path
    print("wrk is missing: installing it with apt-get…", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install_cmd = ["apt-get", "install", "-y", "-qq", "wrk"]
    # A fresh container has no package lists yet: update only when the first try fails.
    for step in ([install_cmd], [["apt-get", "update", "-qq"], install_cmd]):
        if all(_quiet(cmd, env) for cmd in step) and shutil.which("wrk"):
            return shutil.which("wrk")
    print("could not install wrk; falling back to the python client", file=sys.stderr)
    return None


def _quiet(cmd: list[str], env: dict[str, str]) -> bool:
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def relay_source() -> str:
    """Which relay is measured: HEAD's commit and a hash of relay's sources as they are on
    disk now (the working tree may differ from HEAD, and may change while a run goes on)."""
    digest = hashlib.sha256()
    files = [*ROOT.glob("relay/**/*.py"), *ROOT.glob("relay/**/*.sql")]
    for path in sorted([*files, *ROOT.glob("forwarders/**/*.py")]):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    # GIT_OPTIONAL_LOCKS=0: a benchmark must not even refresh the index of the repository.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    git = ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]
    try:
        head = subprocess.run(git, capture_output=True, text=True, env=env, check=False).stdout
    except OSError:
        head = ""
    return f"HEAD {head.strip() or '?'}, sources sha256 {digest.hexdigest()[:12]}"


def filesystem_of(path: Path) -> str:
    """The type of the filesystem holding `path` (from /proc/mounts; "?" elsewhere)."""
    try:
        mounts = Path("/proc/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:
        return "?"
    best, kind = "", "?"
    resolved = str(path.resolve())
    for line in mounts:
        parts = line.split()
        point = parts[1]
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, parts[2]
    return kind
