"""The client's connection: retries with one Idempotency-Key, Retry-After, relay down,
--soft, and a token that is never printed."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.acceptance.client_support import (
    base_env,
    client,
    deployments,
    output_lines,
    serve,
    server_env,
)
from tests.acceptance.server import RelayServer, free_port
from tests.support import CI_TOKEN

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayServer]:
    """The module's relay."""
    yield from serve(tmp_path_factory)


class FrontDoor:
    """A local aiohttp stand-in in front of relay that misbehaves as scripted, one step
    per write, then forwards faithfully.

    Steps: "lost-503" (forward to relay, then answer 503 as a failing proxy would: the
    write happened but the client never hears of it); "429" (answer 429 with
    Retry-After: 1 and forward nothing)."""

    def __init__(self, upstream: str, script: list[str]) -> None:
        self.upstream = upstream
        self.script = list(script)
        self.seen: list[tuple[str, str | None, int]] = []  # method, Idempotency-Key, answer
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    async def _forward(self, request: web.Request) -> tuple[int, bytes, str]:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                self.upstream + request.path_qs,
                data=await request.read(),
                headers=headers,
            ) as answer,
        ):
            return answer.status, await answer.read(), answer.content_type

    async def _handle(self, request: web.Request) -> web.Response:
        step = self.script.pop(0) if request.method != "GET" and self.script else "forward"
        if step == "429":
            status, body, ctype = 429, b'{"error":{"code":"rate_limited"}}', "application/json"
            response = web.Response(status=status, body=body, content_type=ctype)
            response.headers["Retry-After"] = "1"
        else:
            status, body, ctype = await self._forward(request)
            if step == "lost-503":
                status, body = 503, b'{"error":{"code":"unavailable","message":"proxy"}}'
                ctype = "application/json"
            response = web.Response(status=status, body=body, content_type=ctype)
        self.seen.append((request.method, request.headers.get("Idempotency-Key"), status))
        return response

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def __enter__(self) -> FrontDoor:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def env(self, home: Path, **extra: str) -> dict[str, Any]:
        """A client environment pointing at this stand-in."""
        return base_env(
            home, RELAY_URL=f"http://127.0.0.1:{self.port}", RELAY_TOKEN=CI_TOKEN, **extra
        )


def _upstream(relay: RelayServer) -> str:
    return f"http://127.0.0.1:{relay.port}"


def test_a_lost_answer_then_a_201_records_one_deployment(
    relay: RelayServer, tmp_path: Path
) -> None:
    """relay records the POST but the client gets a 503; the retry carries the same
    Idempotency-Key, gets the original 201, and exactly one deployment exists."""
    with FrontDoor(_upstream(relay), ["lost-503"]) as door:
        done = client(
            "deploy", "create", "-C", "once", "--version", "1", env=door.env(tmp_path), cwd=tmp_path
        )
    assert done.returncode == 0, done.stderr
    assert [(m, s) for m, _, s in door.seen] == [("POST", 503), ("POST", 201)]
    keys = {key for _, key, _ in door.seen}
    assert len(keys) == 1 and None not in keys
    recorded = deployments(relay, "once")
    assert [d["id"] for d in recorded] == [done.stdout.strip()]


def test_429_waits_for_retry_after(relay: RelayServer, tmp_path: Path) -> None:
    """A 429 with Retry-After: 1 is retried after about a second, then succeeds."""
    with FrontDoor(_upstream(relay), ["429"]) as door:
        began = time.monotonic()
        done = client(
            "deploy",
            "create",
            "-C",
            "limited",
            "--version",
            "1",
            env=door.env(tmp_path),
            cwd=tmp_path,
        )
        took = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    assert [s for _, _, s in door.seen] == [429, 201]
    assert took >= 1.0
    assert len(deployments(relay, "limited")) == 1


def test_run_survives_lost_answers_on_every_write(relay: RelayServer, tmp_path: Path) -> None:
    """`deploy run` through a proxy that loses the answers of the start, of the output
    appends and of the finish: one deployment, every line once, status success."""
    script = ["lost-503", "forward", "lost-503", "lost-503", "lost-503", "lost-503"]
    command = "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.7)\n"
    with FrontDoor(_upstream(relay), script) as door:
        done = client(
            *("deploy", "run", "-C", "lossy", "--version", "1", "--"),
            *("python3", "-c", command),
            env=door.env(tmp_path),
            cwd=tmp_path,
        )
    assert done.returncode == 0, done.stderr
    assert door.script == []  # every scripted answer was lost
    recorded = deployments(relay, "lossy")
    assert len(recorded) == 1 and recorded[0]["status"] == "success"
    answer = relay.request(
        "GET", f"/components/lossy/deployments/{recorded[0]['id']}", token=CI_TOKEN
    )
    assert answer.body["status"] == "success"
    assert output_lines(relay, "lossy", recorded[0]["id"]) == ["0", "1", "2"]


def test_relay_down_fails_with_one_clear_line(tmp_path: Path) -> None:
    """Nothing listening: after the retries, exit 1 and one line naming the URL."""
    url = f"http://127.0.0.1:{free_port()}"
    env = base_env(tmp_path, RELAY_URL=url, RELAY_TOKEN="s3cr3t-token-value")
    done = client(
        *("deploy", "create", "-C", "x", "--version", "1", "--retries", "2", "--verbose"),
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"relay: error: cannot reach relay at {url}")
    assert "retrying in" in done.stderr  # --verbose shows the retries
    assert "s3cr3t-token-value" not in done.stdout + done.stderr


@pytest.mark.parametrize("soft", [["--soft"], []])
def test_soft_warns_and_exits_0(tmp_path: Path, soft: list[str]) -> None:
    """With --soft (or RELAY_SOFT=1) an unreachable relay is a warning and exit 0."""
    env = base_env(tmp_path, RELAY_URL=f"http://127.0.0.1:{free_port()}")
    if not soft:
        env["RELAY_SOFT"] = "1"
    done = client(
        *("deploy", "create", "-C", "x", "--version", "1", "--retries", "0", *soft),
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0
    assert done.stderr.startswith("relay: warning: cannot reach relay at")


def test_a_refusal_is_not_retried_and_never_shows_the_token(
    relay: RelayServer, tmp_path: Path
) -> None:
    """A wrong token: one request, exit 1, relay's reason in one line, the token not in it."""
    with FrontDoor(_upstream(relay), []) as door:
        env = {**door.env(tmp_path), "RELAY_TOKEN": "wrong-token-123456"}
        done = client(
            *("deploy", "create", "-C", "x", "--version", "1", "--verbose"),
            env=env,
            cwd=tmp_path,
        )
    assert done.returncode == 1
    assert len(door.seen) == 1
    assert done.stderr.startswith("relay: error: relay answered 401 unauthenticated")
    assert "wrong-token-123456" not in done.stdout + done.stderr


def test_validation_errors_are_explained(relay: RelayServer, tmp_path: Path) -> None:
    """relay's 422 details (field and message) are in the one-line error."""
    done = client(
        "deploy",
        "create",
        "-C",
        "x",
        "--version",
        "v" * 300,
        env=server_env(relay, tmp_path),
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "422" in done.stderr and "version" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://relay.example.com:80x",
        "https://",
        "http://ci:pw-s3cr3t-value@127.0.0.1:1",
        "http://relay example.com",
    ],
)
def test_a_malformed_relay_url_is_one_line_and_soft_still_deploys(tmp_path: Path, url: str) -> None:
    """A RELAY_URL that is no usable URL: exit 2 with one line (no traceback, no password
    echoed); with --soft the wrapped command still runs and its exit code wins."""
    env = base_env(tmp_path, RELAY_URL=url, RELAY_TOKEN="s3cr3t-token-value")
    record = ("-C", "x", "--version", "1", "--retries", "0")
    done = client("deploy", "create", *record, env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("relay: error: the relay URL"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    command = ("--", "sh", "-c", "echo DEPLOYED; exit 3")
    soft = client("deploy", "run", *record, "--soft", *command, env=env, cwd=tmp_path)
    assert soft.returncode == 3, soft.stderr
    assert soft.stdout == "DEPLOYED\n"
    assert soft.stderr.startswith("relay: warning: the relay URL"), soft.stderr
    for output in (done.stdout, done.stderr, soft.stderr):
        assert "pw-s3cr3t-value" not in output and "s3cr3t-token-value" not in output


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf"])
def test_a_bad_timeout_is_a_usage_error(tmp_path: Path, timeout: str) -> None:
    """--timeout must be a positive number of seconds: exit 2 with argparse's message."""
    env = base_env(tmp_path, RELAY_URL=f"http://127.0.0.1:{free_port()}")
    done = client(
        *("deploy", "create", "-C", "x", "--version", "1", "--timeout", timeout),
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "--timeout" in done.stderr.strip().splitlines()[-1]


def test_a_token_with_a_trailing_newline_still_works(relay: RelayServer, tmp_path: Path) -> None:
    """A secret stored with its newline (a common CI slip) is trimmed, not a traceback
    that prints it."""
    env = {**server_env(relay, tmp_path), "RELAY_TOKEN": f"{CI_TOKEN}\n"}
    done = client("deploy", "create", "-C", "trimmed", "--version", "1", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(deployments(relay, "trimmed")) == 1


@pytest.mark.parametrize("token", ["s3cr3t token-value", "s3cr3t\ttoken-value", "s3cr3t-tøken"])
def test_a_token_no_header_can_carry_is_one_line_and_soft_still_deploys(
    tmp_path: Path, token: str
) -> None:
    """A token with inner whitespace or non-ASCII characters: exit 2 with one line that
    does not show it; with --soft the wrapped command still runs."""
    env = base_env(tmp_path, RELAY_URL=f"http://127.0.0.1:{free_port()}", RELAY_TOKEN=token)
    record = ("-C", "x", "--version", "1", "--retries", "0")
    done = client("deploy", "create", *record, env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("relay: error: the token"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    soft = client(
        *("deploy", "run", *record, "--soft", "--", "echo", "DEPLOYED"), env=env, cwd=tmp_path
    )
    assert soft.returncode == 0 and soft.stdout == "DEPLOYED\n", soft.stderr
    for output in (done.stderr, soft.stderr):
        assert "s3cr3t" not in output
