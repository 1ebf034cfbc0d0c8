"""`relay deploy run -- CMD`: output streamed live, status by exit code, signals."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.client_support import (
    base_env,
    deployment,
    deployments,
    output_lines,
    serve,
    server_env,
)
from tests.acceptance.server import RelayServer, free_port, relay_command

pytestmark = pytest.mark.slow

SLOW_SCRIPT = """
import sys, time
for i in range(40):
    print(f"step {i}: deploying", flush=True)
    time.sleep(0.1)
print("ERROR: smoke test failed", file=sys.stderr, flush=True)
sys.exit(3)
"""


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayServer]:
    """The module's relay."""
    yield from serve(tmp_path_factory)


def _start(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*relay_command(), "deploy", "run", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _only_deployment(relay: RelayServer, component: str, deadline: float) -> str:
    while time.monotonic() < deadline:
        if found := deployments(relay, component):
            assert len(found) == 1
            return str(found[0]["id"])
        time.sleep(0.05)
    raise AssertionError(f"no deployment of {component} appeared")


def test_run_streams_lines_live_and_ends_by_the_exit_code(
    relay: RelayServer, tmp_path: Path
) -> None:
    """A command printing lines for 4 s then exiting 3: its lines reach relay while it
    runs, the log holds every line in order, the console got them too, the deployment
    ends in a failure status and `relay` exits 3."""
    script = tmp_path / "deploy.py"
    script.write_text(SLOW_SCRIPT)
    process = _start(
        server_env(relay, tmp_path),
        tmp_path,
        *("-C", "runner", "--stage", "production", "--version", "1.4.2", "--"),
        *(sys.executable, str(script)),
    )
    ident = _only_deployment(relay, "runner", time.monotonic() + 10)
    assert deployment(relay, "runner", ident)["status"] == "building"
    seen_while_running = []
    while process.poll() is None:
        seen_while_running = output_lines(relay, "runner", ident)
        if len(seen_while_running) >= 5:
            break
        time.sleep(0.1)
    still_running = process.poll() is None
    stdout, stderr = process.communicate(timeout=60)
    assert still_running and len(seen_while_running) >= 5, "no line was visible during the run"
    assert process.returncode == 3, stderr

    expected = [f"step {i}: deploying" for i in range(40)]
    assert stdout.splitlines() == expected  # passed through to the console
    assert "ERROR: smoke test failed" in stderr
    assert output_lines(relay, "runner", ident) == [*expected, "ERROR: smoke test failed"]
    record = deployment(relay, "runner", ident)
    assert record["status"] == "build-error"
    assert record["meta_data"]["exit_code"] == 3


def test_run_of_a_flood_loses_no_line(relay: RelayServer, tmp_path: Path) -> None:
    """20,000 lines printed at once and an immediate exit 0: every line is in the log, in
    order (the tail included), and the deployment succeeded."""
    process = _start(
        server_env(relay, tmp_path),
        tmp_path,
        *("-C", "flood", "--version", "1", "--"),
        *(sys.executable, "-c", "for i in range(20000): print(f'line {i}')"),
    )
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    ident = _only_deployment(relay, "flood", time.monotonic() + 1)
    expected = [f"line {i}" for i in range(20000)]
    assert output_lines(relay, "flood", ident) == expected
    assert stdout.splitlines() == expected
    assert deployment(relay, "flood", ident)["status"] == "success"


def test_sigterm_is_passed_on_and_the_deployment_ends_aborted(
    relay: RelayServer, tmp_path: Path
) -> None:
    """SIGTERM to `relay deploy run` reaches the command, the deployment ends `aborted`,
    and relay exits with the command's code (143: killed by SIGTERM)."""
    marker = tmp_path / "got-term"
    script = tmp_path / "long.py"
    script.write_text(
        "import signal, sys, time, pathlib\n"
        "def stop(*_):\n"
        f"    pathlib.Path({str(marker)!r}).write_text('term')\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
        "    signal.raise_signal(signal.SIGTERM)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    process = _start(
        server_env(relay, tmp_path),
        tmp_path,
        *("-C", "sig", "--version", "1", "--", sys.executable, str(script)),
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert marker.read_text() == "term"
    ident = _only_deployment(relay, "sig", time.monotonic() + 1)
    assert deployment(relay, "sig", ident)["status"] == "aborted"
    assert output_lines(relay, "sig", ident) == ["ready"]


def test_relay_down_without_soft_does_not_run_the_command(tmp_path: Path) -> None:
    """When relay cannot be reached, `deploy run` fails with one clear line and does not
    run the command."""
    env = {**server_env_down(tmp_path), "RELAY_SOFT": "0"}
    marker = tmp_path / "ran"
    process = _start(
        env, tmp_path, "-C", "x", "--version", "1", "--retries", "1", "--", "touch", str(marker)
    )
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert stderr.startswith("relay: error: cannot reach relay at http://127.0.0.1:")
    assert len(stderr.strip().splitlines()) == 1
    assert not marker.exists()


def test_relay_down_with_soft_runs_the_command_and_keeps_its_code(tmp_path: Path) -> None:
    """With --soft, relay being down only warns: the command runs, its output passes
    through, and its exit code is relay's."""
    process = _start(
        server_env_down(tmp_path),
        tmp_path,
        *("-C", "x", "--version", "1", "--retries", "1", "--soft", "--"),
        *("sh", "-c", "echo deployed; exit 4"),
    )
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 4
    assert stdout == "deployed\n"
    assert "relay: warning: cannot reach relay" in stderr


def test_a_command_that_cannot_run_fails_the_deployment(relay: RelayServer, tmp_path: Path) -> None:
    """A missing executable: exit 127 as a shell would, the deployment failed, the reason
    in its log."""
    process = _start(
        server_env(relay, tmp_path),
        tmp_path,
        *("-C", "missing", "--version", "1", "--", "./no-such-deploy.sh"),
    )
    process.communicate(timeout=60)
    assert process.returncode == 127
    ident = _only_deployment(relay, "missing", time.monotonic() + 1)
    assert deployment(relay, "missing", ident)["status"] == "build-error"
    assert output_lines(relay, "missing", ident)[0].startswith("relay: cannot run")


def server_env_down(home: Path) -> dict[str, str]:
    """An environment pointing at a port nothing listens on."""
    return base_env(home, RELAY_URL=f"http://127.0.0.1:{free_port()}", RELAY_TOKEN="t0ken-x")


def test_a_console_that_goes_away_does_not_stop_the_command(
    relay: RelayServer, tmp_path: Path
) -> None:
    """`relay deploy run … | head -1`: the command still runs to its end, every line
    still reaches relay, and the exit code is still the command's."""
    process = _start(
        server_env(relay, tmp_path),
        tmp_path,
        *("-C", "headed", "--version", "1", "--"),
        *(sys.executable, "-c", "import sys\nfor i in range(50000): print(i)\nsys.exit(5)"),
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "0\n"
    process.stdout.close()
    process.wait(timeout=60)
    assert process.stderr is not None
    stderr = process.stderr.read()
    process.stderr.close()
    assert process.returncode == 5, stderr
    ident = _only_deployment(relay, "headed", time.monotonic() + 1)
    assert output_lines(relay, "headed", ident) == [str(i) for i in range(50000)]


def test_soft_without_a_relay_url_still_runs_the_command(tmp_path: Path) -> None:
    """A job without RELAY_URL (a fork's, say) and RELAY_SOFT=1: a warning, the command
    runs, its code is relay's."""
    process = _start(
        base_env(tmp_path, RELAY_SOFT="1"),
        tmp_path,
        *("-C", "x", "--version", "1", "--", "sh", "-c", "echo done; exit 6"),
    )
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 6
    assert stdout == "done\n"
    assert stderr.startswith("relay: warning: no relay URL")


def test_the_token_never_reaches_the_output_log(relay: RelayServer, tmp_path: Path) -> None:
    """A deploy script that prints its environment (RELAY_TOKEN included, which it
    inherits) leaves the token masked in relay's stored log; the console is the CI's."""
    script = 'echo "debug: RELAY_TOKEN=$RELAY_TOKEN"; echo done'
    process = _start(
        server_env(relay, tmp_path),
        tmp_path,
        *("-C", "leaky", "--version", "1", "--", "sh", "-c", script),
    )
    process.communicate(timeout=60)
    assert process.returncode == 0
    ident = _only_deployment(relay, "leaky", time.monotonic() + 1)
    assert output_lines(relay, "leaky", ident) == ["debug: RELAY_TOKEN=***", "done"]
