"""Run the real `relay` command in a subprocess and talk to it over HTTP (stdlib only)."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

STARTUP_TIMEOUT = 20.0


def relay_command() -> list[str]:
    """The `relay` console script next to this interpreter, else `python -m relay.cli`."""
    script = Path(sys.executable).with_name("relay")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "relay.cli"]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without RELAY_* variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env.update(extra)
    return env


def run_relay(*args: str, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run `relay ARGS` to completion and capture its output."""
    return subprocess.run(
        [*relay_command(), *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def limit_descriptors(soft: int) -> None:
    """Set this process's soft limit of file descriptors (in a child, before exec)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(path: Path, db: Path, tokens: list[dict[str, Any]]) -> Path:
    """A relay.toml serving `db` with `tokens` (JSON-quoted values are valid TOML strings)."""
    lines = [
        "[server]",
        'host = "127.0.0.1"',
        "[storage]",
        f"url = {json.dumps(f'sqlite:///{db}')}",
        "[logging]",
        'format = "json"',
    ]
    for token in tokens:
        lines.append("[[tokens]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in token.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Answer:
    """An HTTP answer: status, headers, parsed JSON body (or None)."""

    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class RelayServer:
    """`relay serve --config CONFIG --port PORT` as a child process."""

    config: Path
    cwd: Path
    port: int = field(default_factory=free_port)
    nofile: int | None = None  # the process's soft limit of file descriptors, if set
    process: subprocess.Popen[str] | None = None
    stdout: str = ""
    stderr: str = ""
    _runs: int = 0
    _out: Path = field(init=False)
    _err: Path = field(init=False)

    def start(self) -> RelayServer:
        """Start the server and wait until /healthz answers."""
        # Files, not pipes: a chatty server can never block on a full pipe.
        self._runs += 1
        self._out = self.cwd / f"relay-{self.port}-{self._runs}.stdout"
        self._err = self.cwd / f"relay-{self.port}-{self._runs}.stderr"
        with self._out.open("w") as out, self._err.open("w") as err:
            self.process = subprocess.Popen(
                [*relay_command(), "serve", "--config", str(self.config), "--port", str(self.port)],
                cwd=self.cwd,
                env=clean_env(),
                stdout=out,
                stderr=err,
                text=True,
                preexec_fn=None if self.nofile is None else partial(limit_descriptors, self.nofile),
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._collect()
                raise AssertionError(f"relay exited early:\n{self.stdout}\n{self.stderr}")
            try:
                if self.request("GET", "/healthz").status == 200:
                    return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise AssertionError(f"relay did not start:\n{self.stdout}\n{self.stderr}")

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> Answer:
        """One HTTP request to the server (JSON body and Bearer token optional)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, method=method
        )
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                status, headers = response.status, dict(response.headers)
        except urllib.error.HTTPError as exc:
            raw, status, headers = exc.read(), exc.code, dict(exc.headers)
            exc.close()
        return Answer(status, headers, json.loads(raw) if raw.strip() else None)

    def stop(self) -> None:
        """SIGTERM, wait for a clean exit, keep its output."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self._collect()

    def kill(self) -> None:
        """SIGKILL (`kill -9`): no chance to flush or close anything."""
        assert self.process is not None
        self.process.kill()
        self._collect()

    def _collect(self) -> None:
        assert self.process is not None
        self.process.wait(timeout=STARTUP_TIMEOUT)
        self.stdout += self._out.read_text(encoding="utf-8")
        self.stderr += self._err.read_text(encoding="utf-8")

    def __enter__(self) -> RelayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()
