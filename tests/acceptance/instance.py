"""One `relay serve` subprocess driven with asyncio and aiohttp (start, wait until it
answers, kill -9 or stop, read its log): used by the crash and PostgreSQL acceptance tests."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.delivery_support import SECRET, eventually, free_port
from tests.support import CI_TOKEN

ROOT = Path(__file__).resolve().parents[2]


_WEBHOOK_CONFIG = """
[server]
host = "127.0.0.1"

[storage]
url = "sqlite:///{db}"

[logging]
format = "json"

[security]
allow_networks = ["127.0.0.0/8"]

[delivery]
{delivery}

[[tokens]]
name = "ci"
token = "{token}"

[[forwarders]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:{hook_port}/hook"
secret = "{secret}"
{forwarder}
"""


def webhook_config(db: Path, hook_port: int, *, delivery: str, forwarder: str) -> str:
    """A relay config on SQLite file `db` with the CI token and one webhook forwarder to
    `hook_port`; `delivery` and `forwarder` are extra TOML lines of those tables."""
    return _WEBHOOK_CONFIG.format(
        db=db,
        token=CI_TOKEN,
        hook_port=hook_port,
        secret=SECRET,
        delivery=delivery.strip(),
        forwarder=forwarder.strip(),
    )


async def spawn_relay(args: list[str], log: Path) -> asyncio.subprocess.Process:
    """`relay ARGS` of this checkout as a subprocess, its output appended to `log`, with
    no RELAY_* setting of the environment running the tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "relay.cli", *args),
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT)},
        )


@dataclass
class Instance:
    """One `relay serve` subprocess with its output in a log file."""

    config: Path
    log: Path
    dispatch: bool = True
    port: int = field(default_factory=free_port)
    proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """Where it serves."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self, http: aiohttp.ClientSession, *, ready: bool = True) -> Instance:
        """Start serving; wait until /readyz (or only /healthz) answers 200."""
        args = ["serve", "--config", str(self.config), "--port", str(self.port)]
        if not self.dispatch:
            args.append("--no-dispatch")
        self.proc = await spawn_relay(args, self.log)
        path = "/readyz" if ready else "/healthz"

        async def answers() -> bool:
            assert self.proc is not None and self.proc.returncode is None, self.output()
            try:
                async with http.get(self.url + path) as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(answers, timeout=30, what=f"relay serve answers {path}")
        return self

    async def kill(self) -> None:
        """SIGKILL (`kill -9`): no shutdown code runs."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                async with asyncio.timeout(15):
                    await self.proc.wait()
            except TimeoutError:
                await self.kill()

    def output(self) -> str:
        """What the process printed (for failure messages)."""
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def log_events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log lines with `"event": name`."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{") and f'"{name}"' in line:
                entry = json.loads(line)
                if entry.get("event") == name:
                    found.append(entry)
        return found
