"""`relay worker --processes 2` on one SQLite file: every delivery sent once, the
forwarder's concurrency shared between the processes, a dead process started again,
and no process left behind when the first one stops or dies."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from relay.standins.webhook import WebhookReceiver
from tests.acceptance.instance import Instance, spawn_relay, webhook_config
from tests.delivery_support import SECRET, eventually, free_port
from tests.support import CI_TOKEN

pytestmark = pytest.mark.slow

EVENTS = 30
HOLD = 0.1  # seconds the target takes per request: sends overlap
CONCURRENCY = 2


def write_config(tmp_path: Path, *, poll: str) -> tuple[Path, int]:
    """A config in `tmp_path` with delivery.poll_interval `poll`; the webhook's port."""
    hook_port = free_port()
    config = tmp_path / "relay.toml"
    config.write_text(
        webhook_config(
            tmp_path / "relay.db",
            hook_port,
            delivery=f'poll_interval = "{poll}"\nshutdown_grace = "1s"',
            forwarder=f"concurrency = {CONCURRENCY}",
        )
    )
    return config, hook_port


class SlowReceiver(WebhookReceiver):
    """A webhook target that takes HOLD seconds per request and notes the most
    requests it ever had in progress at once."""

    def __init__(self) -> None:
        super().__init__(SECRET)
        self.in_flight = self.most_in_flight = 0

    async def _handle(self, request: web.Request, body: bytes) -> tuple[int, Any]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(HOLD)
            return await super()._handle(request, body)
        finally:
            self.in_flight -= 1


class Workers:
    """`relay worker --processes 2` as a subprocess, its JSON log in a file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.proc: asyncio.subprocess.Process | None = None
        self.reader = Instance(config, log)  # only for reading the log

    async def start(self) -> None:
        args = ["worker", "--processes", "2", "--config", str(self.config)]
        self.proc = await spawn_relay(args, self.log)

    def started(self, process: int) -> list[int]:
        """Pids of the `worker_started` lines of worker process `process`."""
        lines = self.reader.log_events("worker_started")
        return [int(e["pid"]) for e in lines if e["process"] == process]

    async def stop(self) -> int | None:
        """SIGTERM, SIGKILL if it does not exit in time; its exit code."""
        if self.proc is None or self.proc.returncode is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.terminate()
        try:
            async with asyncio.timeout(20):
                return await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError("relay worker did not stop on SIGTERM") from None


def running(pid: int) -> bool:
    """Whether process `pid` still runs (reaped or not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
async def backlog(tmp_path: Path) -> AsyncIterator[tuple[Path, SlowReceiver, list[str]]]:
    """A config, its started (slow) target and the ids of EVENTS deployments recorded by a
    `relay serve --no-dispatch`, all waiting for a worker."""
    config, hook_port = write_config(tmp_path, poll="0.2s")
    receiver = SlowReceiver()
    await receiver.start(port=hook_port)
    api = Instance(config, tmp_path / "serve.log", dispatch=False)
    posted: list[str] = []
    async with aiohttp.ClientSession() as http:
        await api.start(http)
        try:
            for i in range(EVENTS):
                async with http.post(
                    f"{api.url}/components/api/deployments",
                    json={"version": f"1.0.{i}", "stage": "production"},
                    headers={"Authorization": f"Bearer {CI_TOKEN}"},
                ) as response:
                    assert response.status == 201, await response.text()
                    posted.append((await response.json())["id"])
        finally:
            await api.stop()
    try:
        yield config, receiver, posted
    finally:
        await receiver.stop()


async def test_two_processes_share_the_work_and_stop_together(
    tmp_path: Path, backlog: tuple[Path, SlowReceiver, list[str]]
) -> None:
    """Both processes send, never above the forwarder's concurrency, each event once; a
    killed process comes back; SIGTERM to the first stops them all."""
    config, receiver, posted = backlog
    workers = Workers(config, tmp_path / "worker.log")
    await workers.start()
    try:
        await eventually(lambda: workers.started(0) and workers.started(1), timeout=30)
        await eventually(lambda: len(receiver.events) == EVENTS, timeout=30, what="all sent")
        assert receiver.most_in_flight == CONCURRENCY  # 1 + 1: both processes sent
        assert receiver.duplicates == []
        assert sorted(e.payload["data"]["id"] for e in receiver.events) == sorted(posted)

        (child,) = workers.started(1)
        os.kill(child, signal.SIGKILL)
        await eventually(lambda: len(workers.started(1)) == 2, timeout=30, what="a restart")
        assert workers.reader.log_events("worker_process_exited")[0]["pid"] == child

        restarted = workers.started(1)[1]
        assert await workers.stop() == 0
        assert not running(restarted)
    finally:
        await workers.stop()
    stopped = {e["process"] for e in workers.reader.log_events("worker_stopped")}
    assert stopped == {0, 1}


async def test_a_process_whose_first_process_died_stops(
    tmp_path: Path, backlog: tuple[Path, SlowReceiver, list[str]]
) -> None:
    """kill -9 of the first process leaves no other worker process running alone."""
    config, _, _ = backlog
    workers = Workers(config, tmp_path / "worker.log")
    await workers.start()
    try:
        await eventually(lambda: workers.started(1), timeout=30, what="the second process")
        (child,) = workers.started(1)
        assert workers.proc is not None
        workers.proc.kill()
        await workers.proc.wait()
        await eventually(lambda: not running(child), timeout=10, what="the orphan's exit")
    finally:
        await workers.stop()


async def test_an_event_recorded_by_the_api_process_is_sent_at_once(tmp_path: Path) -> None:
    """A worker beside `relay serve --no-dispatch` sends a new event well before its poll."""
    config, hook_port = write_config(tmp_path, poll="60s")
    receiver = WebhookReceiver(SECRET)
    await receiver.start(port=hook_port)
    api = Instance(config, tmp_path / "serve.log", dispatch=False)
    workers = Workers(config, tmp_path / "worker.log")
    async with aiohttp.ClientSession() as http:
        try:
            await api.start(http)
            await workers.start()
            await eventually(lambda: workers.started(0) and workers.started(1), timeout=30)
            await asyncio.sleep(0.5)  # both idle, waiting for their (60 s) poll
            started = time.monotonic()
            async with http.post(
                f"{api.url}/components/api/deployments",
                json={"version": "2.0.0", "stage": "production"},
                headers={"Authorization": f"Bearer {CI_TOKEN}"},
            ) as response:
                assert response.status == 201, await response.text()
            await eventually(lambda: len(receiver.events) == 1, timeout=10, what="the send")
            assert time.monotonic() - started < 2
        finally:
            await workers.stop()
            await api.stop()
            await receiver.stop()
