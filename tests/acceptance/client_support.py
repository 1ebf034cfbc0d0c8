"""Helpers of the CI-side tests: a real `relay serve`, and `relay deploy …` as a CI runs it."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.server import RelayServer, relay_command, write_config
from tests.support import CI_TOKEN, TOKENS


def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayServer]:
    """A real `relay serve` on a SQLite file, for a module-scoped fixture to yield."""
    root = tmp_path_factory.mktemp("relay")
    config = write_config(root / "relay.toml", root / "relay.db", TOKENS)
    with RelayServer(config, root) as server:
        yield server


def base_env(home: Path, **extra: str) -> dict[str, str]:
    """A minimal environment: no CI variables of the machine running the tests, no RELAY_*."""
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}
    # git must not find a repository above the test's directory.
    env["GIT_CEILING_DIRECTORIES"] = str(home.parent)
    env.update(extra)
    return env


def server_env(server: RelayServer, home: Path, **extra: str) -> dict[str, str]:
    """`base_env` pointing at `server` with the CI token."""
    return base_env(
        home, RELAY_URL=f"http://127.0.0.1:{server.port}", RELAY_TOKEN=CI_TOKEN, **extra
    )


def client(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `relay ARGS` (a client command) to its end, output captured."""
    return subprocess.run(
        [*relay_command(), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def deployment(server: RelayServer, component: str, ident: str) -> dict[str, Any]:
    """The deployment as relay serves it."""
    answer = server.request("GET", f"/components/{component}/deployments/{ident}", token=CI_TOKEN)
    assert answer.status == 200, answer.body
    body: dict[str, Any] = answer.body
    return body


def deployments(server: RelayServer, component: str) -> list[dict[str, Any]]:
    """Every deployment of `component`, newest first."""
    answer = server.request("GET", f"/components/{component}/deployments?limit=500", token=CI_TOKEN)
    assert answer.status == 200, answer.body
    body: list[dict[str, Any]] = answer.body
    return body


def output_lines(server: RelayServer, component: str, ident: str) -> list[str]:
    """The deployment's output log, line by line (text/plain, so not via `request`)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/components/{component}/deployments/{ident}/output",
        headers={"Authorization": f"Bearer {CI_TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        text: str = response.read().decode("utf-8")
    return text.splitlines()


def dry_run_body(stdout: str) -> dict[str, Any]:
    """The JSON body of the first request a `--dry-run` printed."""
    _, _, rest = stdout.partition("\n\n")
    body: dict[str, Any] = json.loads(rest.splitlines()[0])
    return body
