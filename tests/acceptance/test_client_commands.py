"""`relay deploy create|start|finish` and `relay build create` against a real relay."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.client_support import (
    base_env,
    client,
    deployment,
    deployments,
    dry_run_body,
    serve,
    server_env,
)
from tests.acceptance.server import RelayServer, relay_command
from tests.support import CI_TOKEN

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayServer]:
    """The module's relay."""
    yield from serve(tmp_path_factory)


def test_create_records_a_finished_deployment(relay: RelayServer, tmp_path: Path) -> None:
    """`deploy create` records the flags' deployment and prints only its id."""
    done = client(
        *("deploy", "create", "--component", "web", "--stage", "production"),
        *("--version", "1.4.2", "--result", "success", "--host", "node-1"),
        *("--meta", "ticket=OPS-1", "--meta", "note=a=b"),
        env=server_env(relay, tmp_path),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    record = deployment(relay, "web", done.stdout.strip())
    assert (record["version"], record["stage"], record["host"]) == ("1.4.2", "production", "node-1")
    assert (record["result"], record["status"]) == ("success", "success")
    assert record["meta_data"] == {"ticket": "OPS-1", "note": "a=b"}


def test_build_create_records_a_build(relay: RelayServer, tmp_path: Path) -> None:
    """`build create` records a build of the component."""
    done = client(
        *("build", "create", "-C", "api", "--version", "2.0.0", "--result", "failure"),
        env=server_env(relay, tmp_path),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    answer = relay.request("GET", f"/components/api/builds/{done.stdout.strip()}", token=CI_TOKEN)
    assert answer.status == 200, answer.body
    assert (answer.body["version"], answer.body["status"]) == ("2.0.0", "build-error")


def test_start_then_finish_finds_the_id_in_the_working_directory(
    relay: RelayServer, tmp_path: Path
) -> None:
    """`start` leaves the id in ./relay-deployment.env; `finish` ends that deployment and
    removes the file."""
    env = server_env(relay, tmp_path)
    started = client(
        *("deploy", "start", "-C", "shop", "--stage", "staging", "--version", "7"),
        env=env,
        cwd=tmp_path,
    )
    assert started.returncode == 0, started.stderr
    ident = started.stdout.strip()
    assert deployment(relay, "shop", ident)["status"] == "building"
    handoff = tmp_path / "relay-deployment.env"
    assert f"RELAY_DEPLOYMENT_ID={ident}" in handoff.read_text().splitlines()

    finished = client("deploy", "finish", "--status", "success", env=env, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr
    record = deployment(relay, "shop", ident)
    assert (record["status"], record["is_deploying"]) == ("success", False)
    assert not handoff.exists()


def test_start_writes_github_env_for_later_steps(relay: RelayServer, tmp_path: Path) -> None:
    """In GitHub Actions, `start` appends the id to $GITHUB_ENV and $GITHUB_OUTPUT, and a
    later step elsewhere finishes with nothing but those variables."""
    github_env, github_output = tmp_path / "github_env", tmp_path / "github_output"
    step_one, step_two = tmp_path / "one", tmp_path / "two"
    step_one.mkdir()
    step_two.mkdir()
    env = server_env(relay, tmp_path, GITHUB_ENV=str(github_env), GITHUB_OUTPUT=str(github_output))
    started = client("deploy", "start", "-C", "gh", "--version", "1", env=env, cwd=step_one)
    assert started.returncode == 0, started.stderr
    ident = started.stdout.strip()
    assert github_output.read_text() == f"deployment_id={ident}\n"
    exported = dict(line.split("=", 1) for line in github_env.read_text().splitlines())
    assert exported == {"RELAY_DEPLOYMENT_ID": ident, "RELAY_COMPONENT": "gh"}

    later = client(
        *("deploy", "finish", "--status", "crashed-error", "--result", "smoke test failed"),
        env={**server_env(relay, tmp_path), **exported},
        cwd=step_two,
    )
    assert later.returncode == 0, later.stderr
    record = deployment(relay, "gh", ident)
    assert (record["status"], record["result"]) == ("crashed-error", "smoke test failed")


def test_finish_with_an_explicit_id(relay: RelayServer, tmp_path: Path) -> None:
    """`finish --id --component` ends the named deployment; ending it twice is a clear 409."""
    env = server_env(relay, tmp_path)
    started = client("deploy", "start", "-C", "ex", "--version", "1", env=env, cwd=tmp_path)
    ident = started.stdout.strip()
    (tmp_path / "relay-deployment.env").unlink()
    args = ("deploy", "finish", "--status", "aborted", "--id", ident, "-C", "ex")
    assert client(*args, env=env, cwd=tmp_path).returncode == 0
    assert deployment(relay, "ex", ident)["status"] == "aborted"
    again = client(*args[:3], "success", *args[4:], env=env, cwd=tmp_path)
    assert again.returncode == 1
    assert again.stderr.startswith("relay: error: relay answered 409 invalid_transition")
    assert len(again.stderr.strip().splitlines()) == 1


def test_finish_without_a_started_deployment_says_what_to_do(
    relay: RelayServer, tmp_path: Path
) -> None:
    """`finish` with no id anywhere exits 2 and names the ways to give one."""
    done = client(
        "deploy", "finish", "--status", "success", env=server_env(relay, tmp_path), cwd=tmp_path
    )
    assert done.returncode == 2
    assert "relay deploy start" in done.stderr and "--id" in done.stderr


def test_dry_run_prints_the_request_and_masks_the_token(relay: RelayServer, tmp_path: Path) -> None:
    """`--dry-run` prints method, URL, headers and body with the token masked; nothing is
    recorded."""
    env = server_env(relay, tmp_path)
    done = client(
        *("deploy", "create", "-C", "dry", "--version", "9", "--dry-run", "--verbose"),
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        f"POST http://127.0.0.1:{relay.port}/components/dry/deployments\n"
    )
    assert "Authorization: Bearer ***" in done.stdout
    assert "Idempotency-Key: " in done.stdout
    assert CI_TOKEN not in done.stdout + done.stderr
    assert dry_run_body(done.stdout) == {"version": "9"}
    assert deployments(relay, "dry") == []


def test_missing_url_is_a_usage_error(tmp_path: Path) -> None:
    """Without RELAY_URL or --url the command exits 2 and says how to give one."""
    done = client(
        "deploy", "create", "-C", "x", "--version", "1", env=base_env(tmp_path), cwd=tmp_path
    )
    assert done.returncode == 2
    assert done.stderr == "relay: error: no relay URL: set RELAY_URL or pass --url\n"


def test_the_client_loads_nothing_of_the_server(tmp_path: Path) -> None:
    """A whole `relay deploy create --dry-run` imports neither the server's modules nor
    aiohttp, pydantic or structlog."""
    code = (
        "import sys\n"
        "from relay.cli import main\n"
        "code = main(['deploy', 'create', '-C', 'x', '--version', '1', '--dry-run'])\n"
        "heavy = ('aiohttp', 'pydantic', 'structlog', 'relay.app', 'relay.api', 'relay.store',"
        " 'relay.records', 'relay.delivery', 'relay.settings', 'forwarders')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith(heavy)))\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=base_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def test_arguments_that_are_not_utf8_arrive_as_replacement_characters(
    relay: RelayServer, tmp_path: Path
) -> None:
    """A flag holding bytes that are not UTF-8 (a Latin-1 commit subject pasted in with
    $(git log ...)) is sent with U+FFFD in their place, not a crash that stops --soft."""
    args = ("deploy", "create", "-C", "latin1", "--version", "1", "--meta", "title=caf\udce9")
    done = subprocess.run(
        [*relay_command(), *args, "--soft"],
        cwd=tmp_path,
        env=server_env(relay, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and not done.stderr, done.stderr
    (record,) = deployments(relay, "latin1")
    assert record["meta_data"]["title"] == "caf\ufffd"


@pytest.mark.parametrize("ident", ["a b", "../../../healthz", "x?y#z"])
def test_an_id_is_one_path_segment(relay: RelayServer, tmp_path: Path, ident: str) -> None:
    """Whatever --id holds, finish asks relay for that deployment (404: no such deployment),
    not another route or a malformed URL retried as a lost connection."""
    done = client(
        *("deploy", "finish", "--status", "success", "--id", ident, "-C", "web"),
        env=server_env(relay, tmp_path),
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("relay: error: relay answered 404 not_found: no deployment")
