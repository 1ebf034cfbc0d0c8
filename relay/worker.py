"""`relay worker`: the delivery loop without the HTTP API, in one or several processes.

With `--processes N` the first process starts N-1 more of itself; each runs a
dispatcher with its share of every forwarder's `concurrency` (the shares add up to
the configured value, so a target never sees more requests at once than with one
process). Claims are leased in the store, so the processes never send one delivery
twice; a process that dies is started again, and its leases are freed when its
successor opens the store. Only the first process prunes old rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta

import structlog

from relay.delivery.circuit import CircuitBreaker
from relay.delivery.dispatch import Dispatcher
from relay.delivery.http import Transport
from relay.delivery.plugins import Registry, default_registry
from relay.delivery.target import Target
from relay.settings import Settings
from relay.store import Store
from relay.tasks import cancel_and_wait

log = structlog.get_logger("relay.worker")

# A process that exits is started again after this pause (seconds), so that one that
# fails at once does not spin.
RESTART_DELAY = 1.0
# How often a worker process checks that the process that started it still runs.
PARENT_CHECK = 1.0
# The first process starts delivering once the others do, or after this many seconds.
READY_TIMEOUT = 30.0
# Environment of a spawned process: the pipe it reports its start on, and the pid of
# the process that spawned it (it stops once that one is gone).
READY_FD = "RELAY_WORKER_READY_FD"
PARENT_PID = "RELAY_WORKER_PARENT_PID"


@dataclass(frozen=True)
class Share:
    """Which of `count` worker processes this is (0 is the one that was started)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Share:
        """`"k/N"` as a Share; ValueError unless 0 <= k < N."""
        index, _, count = text.partition("/")
        share = cls(int(index), int(count))
        if not 0 <= share.index < share.count:
            raise ValueError(f"not a share of the worker processes: {text!r}")
        return share

    def of(self, total: int) -> int:
        """This process's part of `total` slots: the parts of all processes add up to
        `total` and differ by one at most."""
        return total // self.count + (1 if self.index < total % self.count else 0)


ALONE = Share(0, 1)


def child_command(config: str | None, share: Share) -> list[str]:
    """The command line of worker process `share.index` (the same interpreter)."""
    argv = [sys.executable, "-m", "relay.cli", "worker", "--share", f"{share.index}/{share.count}"]
    return argv + (["--config", config] if config is not None else [])


class Children:
    """Worker processes 1..N-1 of the first one: started, restarted when one exits,
    stopped with SIGTERM (their own graceful stop) when the first one stops."""

    def __init__(self, config: str | None, count: int, grace: float) -> None:
        self.config, self.count, self.grace = config, count, grace
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = -1

    def spawn(self) -> None:
        """Start every other process (before this one's own start-up, which they then
        run alongside instead of after); each reports on a pipe once it delivers."""
        self._ready, ready = os.pipe()
        try:
            for index in range(1, self.count):
                self.processes[index] = self._popen(index, ready)
        finally:
            os.close(ready)

    async def started(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait until every process started by spawn() delivers (or has exited, or
        `timeout` has passed), so that all begin together."""
        await asyncio.to_thread(_read_reports, self._ready, len(self.processes), timeout)

    def _popen(self, index: int, ready: int | None = None) -> subprocess.Popen[bytes]:
        env = {**os.environ, PARENT_PID: str(os.getpid())}
        if ready is not None:
            env[READY_FD] = str(ready)
        argv = child_command(self.config, Share(index, self.count))
        return subprocess.Popen(argv, pass_fds=() if ready is None else (ready,), env=env)

    def watch(self) -> None:
        """From now on, start a process again when it exits."""
        for index in self.processes:
            self._tasks.append(asyncio.create_task(self._keep(index), name=f"relay-worker-{index}"))

    async def _keep(self, index: int) -> None:
        while True:
            process = self.processes[index]
            code = await asyncio.to_thread(process.wait)
            log.warning("worker_process_exited", process=index, pid=process.pid, code=code)
            await asyncio.sleep(RESTART_DELAY)
            try:
                self.processes[index] = self._popen(index)
            except OSError as exc:
                log.error("worker_process_failed", process=index, error=str(exc))

    async def stop(self) -> None:
        """SIGTERM every process and wait for it; SIGKILL what outlives the grace."""
        for task in self._tasks:  # first, so that none is started again meanwhile
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        running = [p for p in self.processes.values() if p.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(_wait_all, running, self.grace + 5)


def _read_reports(fd: int, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    try:
        while count > 0:
            readable, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not readable:
                log.warning("worker_processes_slow", waiting_for=count, after_s=timeout)
                return
            got = os.read(fd, count)
            if not got:  # every writer gone: the processes that could report have
                return
            count -= len(got)
    finally:
        os.close(fd)


def report_started() -> None:
    """Tell the first worker process that this one delivers (a process it spawned)."""
    fd = os.environ.pop(READY_FD, None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.write(int(fd), b".")
            os.close(int(fd))


def _wait_all(processes: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _orphaned(parent: int, stop: asyncio.Event) -> None:
    # A process started by another worker stops when that one is gone (killed with
    # SIGKILL, say, even before this one got going) instead of running on alone.
    while os.getppid() == parent:
        await asyncio.sleep(PARENT_CHECK)
    stop.set()


def _parent() -> int:
    """The pid of the worker process that spawned this one (else of whatever did)."""
    text = os.environ.get(PARENT_PID, "")
    return int(text) if text.isdigit() else os.getppid()


def build_dispatcher(
    settings: Settings,
    store: Store,
    transport: Transport,
    registry: Registry | None = None,
    *,
    share: Share = ALONE,
) -> Dispatcher:
    """A dispatcher running every configured forwarder (with `share`'s part of each
    one's concurrency, when several worker processes deliver)."""
    registry = registry or default_registry()
    delivery = settings.delivery
    targets = [
        Target(
            config=config,
            forwarder=registry.get(config.type)(config),
            slots=share.of(config.concurrency),
            breaker=CircuitBreaker(
                threshold=delivery.circuit_threshold,
                cooldown=timedelta(seconds=delivery.circuit_cooldown),
            ),
        )
        for config in settings.forwarders
    ]
    dispatcher = Dispatcher(
        store, targets, transport, poll_interval=delivery.poll_interval, lease=delivery.lease
    )
    # This process's own events: their deliveries may start before the event's fsync.
    store.add_commit_listener(dispatcher.wake)
    return dispatcher


async def run_worker(settings: Settings, share: Share, children: Children | None = None) -> None:
    """Deliver until SIGINT/SIGTERM: this process's share; the first of several also
    keeps the others (`children`, already spawned) running, and stops them."""
    from relay.delivery.http import AiohttpTransport
    from relay.records.retention import Pruner
    from relay.store import open_store
    from relay.store.opening import open_with_retry

    store = open_store(
        settings.storage.url,
        pool_min=settings.storage.pool_min,
        pool_max=settings.storage.pool_max,
    )
    where = settings.storage.url.rsplit("@", 1)[-1]  # never the password
    await open_with_retry(store, where)
    transport = AiohttpTransport(allow_networks=settings.security.networks())
    dispatcher = build_dispatcher(settings, store, transport, share=share)
    store.add_due_listener(dispatcher.wake)  # other processes' commits
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watch = None if share.index == 0 else asyncio.create_task(_orphaned(_parent(), stop))
    if children is not None:
        await children.started()
    await dispatcher.start()
    report_started()
    pruner = Pruner.from_settings(store, settings.storage.retention) if share.index == 0 else None
    if children is not None:
        children.watch()
    if pruner is not None:
        pruner.start()
    log.info(
        "worker_started",
        forwarders=sorted(dispatcher.targets),
        process=share.index,
        processes=share.count,
        pid=os.getpid(),
    )
    await stop.wait()
    await cancel_and_wait(watch)
    if pruner is not None:
        await pruner.stop()
    # The other processes finish their sends while this one finishes its own.
    stopping = [dispatcher.stop(settings.delivery.shutdown_grace)]
    if children is not None:
        stopping.append(children.stop())
    await asyncio.gather(*stopping)
    await transport.close()
    await store.close()
    log.info("worker_stopped", process=share.index)
