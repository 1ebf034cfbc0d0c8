"""Crash loop: `kill -9` relay at random moments under load and prove nothing acknowledged is lost.

Runs `relay serve` on a temporary SQLite file with one webhook forwarder pointing at a
local Standard Webhooks receiver, posts deployments continuously, kills the server
with SIGKILL at a random moment, restarts it, and repeats. At the end every event that
got a 201 must be stored and must have reached the receiver at least once; a
redelivery must reuse its delivery's `webhook-id`.

    python bench/crashloop.py [--cycles 20] [--seed N]

Not a bench/run.py benchmark (it measures correctness, not speed): run.py skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from relay.settings import Settings  # noqa: E402
from relay.standins.webhook import WebhookReceiver  # noqa: E402

TOKEN = "crashloop-token"
SECRET = "whsec_" + base64.b64encode(b"crash-loop-webhook-secret-32byt").decode()
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    """A loopback TCP port nothing listens on (yet)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(path: Path, db: Path, hook_url: str) -> None:
    """A relay.toml: SQLite at `db`, one webhook forwarder with a short retry schedule."""
    lines = [
        "[server]",
        'host = "127.0.0.1"',
        "[storage]",
        f"url = {json.dumps(f'sqlite:///{db}')}",
        "[logging]",
        'format = "json"',
        'level = "warning"',
        "[delivery]",
        'poll_interval = "0.5s"',
        'shutdown_grace = "1s"',
    ]
    if "security" in Settings.model_fields:  # the SSRF guard refuses loopback otherwise
        lines += ["[security]", 'allow_networks = ["127.0.0.0/8"]']
    lines += [
        "[[tokens]]",
        'name = "ci"',
        f"token = {json.dumps(TOKEN)}",
        "[[forwarders]]",
        'name = "hook"',
        'type = "webhook"',
        f"url = {json.dumps(hook_url)}",
        f"secret = {json.dumps(SECRET)}",
        'timeout = "2s"',
        "retry = { schedule = [" + ", ".join(['"0.2s"'] * 100) + "], jitter = 0 }",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class Server:
    """`relay serve` as a child process, started and SIGKILLed at will."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, http: aiohttp.ClientSession, timeout: float = 20.0) -> None:
        """Start the process and wait (bounded) until /healthz answers 200."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
        env["PYTHONPATH"] = str(ROOT)
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *("-m", "relay.cli", "serve", "--config", str(self.config)),
                *("--port", str(self.port)),
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                cwd=ROOT,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise RuntimeError(f"relay exited early:\n{self.output()}")
            try:
                async with http.get(self.url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError(f"relay did not start:\n{self.output()}")

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 10 s."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    def output(self) -> str:
        """The tail of what the process printed."""
        return self.log.read_text(errors="replace")[-4000:]


async def post_stream(
    http: aiohttp.ClientSession, server: Server, acked: list[str], stop: asyncio.Event, n: int
) -> None:
    """POST deployments until `stop`; remember the id of each one answered 201."""
    i = 0
    while not stop.is_set():
        i += 1
        body = {"version": f"{n}.{i}", "stage": "production", "result": "success"}
        try:
            async with http.post(
                f"{server.url}/components/api/deployments", json=body, headers=HEADERS
            ) as response:
                if response.status == 201:
                    acked.append((await response.json())["id"])
        except (TimeoutError, aiohttp.ClientError):
            await asyncio.sleep(0.01)  # the server died: not acknowledged, not counted


async def crash_cycles(
    http: aiohttp.ClientSession, server: Server, cycles: int, rng: random.Random
) -> list[str]:
    """Run `cycles` rounds of start → load → kill -9; the ids acknowledged with 201."""
    acked: list[str] = []
    for cycle in range(cycles):
        await server.start(http)
        stop = asyncio.Event()
        posters = [
            asyncio.create_task(post_stream(http, server, acked, stop, cycle * 10 + k))
            for k in range(4)
        ]
        await asyncio.sleep(rng.uniform(0.2, 1.2))
        await server.kill()  # at a random moment, in the middle of requests and sends
        stop.set()
        await asyncio.gather(*posters)
    return acked


async def verify(
    http: aiohttp.ClientSession, server: Server, receiver: WebhookReceiver, acked: list[str]
) -> dict[str, Any]:
    """Restart, wait for every acknowledged event at the receiver, and count what is wrong."""
    await server.start(http)
    missing_stored = 0
    for dep in acked:
        async with http.get(f"{server.url}/components/api/deployments/{dep}", headers=HEADERS) as r:
            missing_stored += r.status != 200
    deadline = time.monotonic() + 60
    wanted = set(acked)
    while time.monotonic() < deadline:
        if wanted <= {e.payload["data"]["id"] for e in receiver.events}:
            break
        await asyncio.sleep(0.1)
    received = {e.payload["data"]["id"] for e in receiver.events}
    ids_by_dep: dict[str, set[str]] = {}
    for request in receiver.accepted:
        dep = request.json()["data"]["id"]
        ids_by_dep.setdefault(dep, set()).add(request.headers["webhook-id"])
    return {
        "events_acknowledged": len(acked),
        "not_stored": missing_stored,
        "not_delivered": len(wanted - received),
        "duplicates": len(receiver.duplicates),
        "duplicates_with_new_id": sum(len(ids) - 1 for ids in ids_by_dep.values()),
    }


async def run(cycles: int, seed: int | None, out: Any = sys.stdout) -> dict[str, Any]:
    """The whole crash loop in a temporary directory; the figures it measured."""
    rng = random.Random(seed)
    receiver = WebhookReceiver(SECRET)
    await receiver.start()
    with tempfile.TemporaryDirectory(prefix="relay-crashloop-") as tmp:
        config = Path(tmp) / "relay.toml"
        write_config(config, Path(tmp) / "relay.db", receiver.endpoint)
        server = Server(config, Path(tmp) / "relay.log")
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            try:
                acked = await crash_cycles(http, server, cycles, rng)
                figures = await verify(http, server, receiver, acked)
            finally:
                await server.kill()
                await receiver.stop()
    figures = {"cycles": cycles, **figures}
    figures["lost"] = figures["not_stored"] + figures["not_delivered"]
    for key, value in figures.items():
        print(f"{key:24} {value}", file=out)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 when no acknowledged event was lost and duplicates kept their id."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20, help="kill -9 cycles (default 20)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for kill moments")
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args.cycles, args.seed))
    ok = figures["lost"] == 0 and figures["duplicates_with_new_id"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
