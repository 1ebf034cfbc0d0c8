"""`relay demo`: a newcomer's first look at fan-out, with no account anywhere."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.fixture(scope="module", name="done")
def demo_run() -> subprocess.CompletedProcess[str]:
    """One `relay demo` run, output captured, for the tests that read what it printed."""
    return subprocess.run(
        [sys.executable, "-m", "relay.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_demo_delivers_to_all_five_stand_ins(done: subprocess.CompletedProcess[str]) -> None:
    """`relay demo` exits 0 and prints one delivered row per target with what it received."""
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if " delivered " in line}
    assert sorted(rows) == ["bugsnag", "grafana", "newrelic", "sentry", "webhook"]
    assert "POST /api/annotations" in rows["grafana"]
    assert "/releases/demo-api@v1.4.2/deploys/" in rows["sentry"]
    assert "POST /graphql" in rows["newrelic"]
    assert "every target got the deployment" in done.stdout


@pytest.mark.slow
def test_demo_shows_the_body_each_target_received(
    done: subprocess.CompletedProcess[str],
) -> None:
    """After the table, `relay demo` prints each request's path and body per target."""
    assert done.returncode == 0, done.stdout + done.stderr
    _, _, bodies = done.stdout.partition("what each target received:")
    assert "grafana: POST /api/annotations" in bodies
    assert "webhook: POST /hook" in bodies
    assert '"version": "v1.4.2"' in bodies  # the webhook's JSON payload, indented
    assert "mutation" in bodies  # New Relic's GraphQL body


# What `make run` does not install: the dev extra and the postgres one.
NOT_INSTALLED_BY_MAKE_RUN = (
    "pytest",
    "pytest_aiohttp",
    "hypothesis",
    "schemathesis",
    "playwright",
    "mypy",
    "importlinter",
    "deptry",
    "asyncpg",
)
_BLOCKING_DEMO = f"""
import sys
BLOCKED = {NOT_INSTALLED_BY_MAKE_RUN!r}
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}")
        return None
sys.meta_path.insert(0, Block())
from relay.cli import main
sys.exit(main(["demo"]))
"""


@pytest.mark.slow
def test_demo_needs_only_what_make_run_installs() -> None:
    """`relay demo` runs with every dev-only and PostgreSQL module unimportable."""
    done = subprocess.run(
        [sys.executable, "-c", _BLOCKING_DEMO],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every target got the deployment" in done.stdout
