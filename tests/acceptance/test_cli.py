"""The `relay` command: check-config, migrate, tokens create|list|revoke, serve."""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.request
from pathlib import Path

import pytest

from relay import __version__
from relay.auth import hash_token
from relay.cli import main
from relay.store.sqlite.engine import known_migrations
from tests.acceptance.server import RelayServer, run_relay, write_config
from tests.support import CI_TOKEN, TOKENS

GOOD_CONFIG = """
[server]
host = "127.0.0.1"
port = 8099

[storage]
url = "sqlite:///data/relay.db"

[[tokens]]
name = "ci"
token = "${CI_SECRET:-config-secret-value-1}"
scopes = ["events:write", "events:read"]
"""

BAD_CONFIG = """
[server]
port = 70000
colour = "blue"

[[tokens]]
name = "ci"
token = "tiny"

[[tokens]]
token = "secret-but-nameless-1"
"""


def _write(tmp_path: Path, text: str, name: str = "relay.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _config(tmp_path: Path, tokens: list[dict[str, object]] | None = None) -> Path:
    return write_config(
        tmp_path / "relay.toml", tmp_path / "relay.db", TOKENS if tokens is None else tokens
    )


# --- check-config ----------------------------------------------------------------------


def test_check_config_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A valid file exits 0 and summarises it without showing any secret."""
    path = _write(tmp_path, GOOD_CONFIG)
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: OK" in out
    assert "127.0.0.1:8099" in out
    assert "ci" in out
    assert "config-secret-value-1" not in out


def test_check_config_lists_every_error_with_its_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An invalid file exits non-zero and prints one line per problem, with its location."""
    path = _write(tmp_path, BAD_CONFIG)
    assert main(["check-config", str(path)]) != 0
    captured = capsys.readouterr()
    err = captured.err
    assert str(path) in err
    located = dict(re.findall(r"^\s+(\S+): (.+)$", err, re.MULTILINE))
    assert set(located) == {"server.port", "server.colour", "tokens[0].token", "tokens[1].name"}
    assert "65535" in located["server.port"]
    assert "tiny" not in captured.out + err
    assert "secret-but-nameless-1" not in captured.out + err


def test_check_config_names_missing_variables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ${VAR} that is not set is reported with the setting that uses it."""
    path = _write(tmp_path, '[[tokens]]\nname = "ci"\ntoken = "${RELAY_TEST_UNSET_TOKEN}"\n')
    assert main(["check-config", str(path)]) != 0
    err = capsys.readouterr().err
    assert "RELAY_TEST_UNSET_TOKEN" in err
    assert re.search(r"^\s+tokens\[0\]\.token: ", err, re.MULTILINE)


def test_check_config_of_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A config path that does not exist exits non-zero and says so."""
    assert main(["check-config", str(tmp_path / "nope.toml")]) != 0
    assert "does not exist" in capsys.readouterr().err


def test_check_config_of_invalid_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that is not TOML exits non-zero and points at the line."""
    path = _write(tmp_path, "[server\nport = 1\n")
    assert main(["check-config", str(path)]) != 0
    err = capsys.readouterr().err
    assert "not valid TOML" in err and "line 1" in err


def test_check_config_applies_env_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """RELAY_SERVER__PORT overrides the file in what check-config reports."""
    monkeypatch.setenv("RELAY_SERVER__PORT", "9000")
    assert main(["check-config", str(_write(tmp_path, GOOD_CONFIG))]) == 0
    assert "127.0.0.1:9000" in capsys.readouterr().out


def test_check_config_reads_relay_config_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a path, check-config validates the file named by RELAY_CONFIG."""
    monkeypatch.setenv("RELAY_CONFIG", str(_write(tmp_path, GOOD_CONFIG, "other.toml")))
    assert main(["check-config"]) == 0
    assert "OK" in capsys.readouterr().out


# --- migrate and tokens (in-process) ----------------------------------------------------


def _rows(db: Path, query: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def test_migrate_creates_the_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`relay migrate` applies every migration to a new database and exits 0."""
    assert main(["migrate", "--config", str(_config(tmp_path))]) == 0
    assert "migrations applied" in capsys.readouterr().out
    versions = [v for (v,) in _rows(tmp_path / "relay.db", "SELECT version FROM schema_migrations")]
    assert versions == [v for v, _, _ in known_migrations()]


def test_tokens_create_prints_the_token_once_and_stores_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tokens create` prints a new token; the database holds only its hash."""
    config = _config(tmp_path)
    assert main(["tokens", "--config", str(config), "create", "deploy-bot"]) == 0
    out = capsys.readouterr().out
    token = out.strip().splitlines()[-1]
    assert token.startswith("rly_")
    assert "shown only once" in out
    db = tmp_path / "relay.db"
    assert _rows(db, "SELECT name, token_hash, scopes, components FROM tokens") == [
        ("deploy-bot", hash_token(token), '["events:write", "events:read"]', '["*"]')
    ]
    for path in tmp_path.glob("relay.db*"):
        assert token.encode() not in path.read_bytes()


def test_tokens_list_shows_tokens_but_never_their_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tokens list` shows names, scopes and globs of stored and config tokens, no values."""
    config = _config(tmp_path)
    main(
        [
            "tokens",
            "--config",
            str(config),
            "create",
            "web-reader",
            "--scope",
            "events:read",
            "--component",
            "web-*",
        ]
    )
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["tokens", "--config", str(config), "list"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("web-reader"))
    assert "events:read" in line and "web-*" in line and "active" in line
    assert "events:write" not in line
    assert re.search(r"^ci\s.*\(config file\)", out, re.MULTILINE)
    for secret in (token, CI_TOKEN, *(str(t["token"]) for t in TOKENS)):
        assert secret not in out


def test_tokens_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`tokens revoke` marks the token revoked (exit 0); an unknown name exits 1."""
    config = _config(tmp_path)
    main(["tokens", "--config", str(config), "create", "bot"])
    assert main(["tokens", "--config", str(config), "revoke", "bot"]) == 0
    assert "revoked 'bot'" in capsys.readouterr().out
    assert main(["tokens", "--config", str(config), "revoke", "bot"]) == 1
    assert main(["tokens", "--config", str(config), "list"]) == 0
    assert re.search(r"^bot\s.*revoked", capsys.readouterr().out, re.MULTILINE)


def test_tokens_create_refuses_a_duplicate_active_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Creating a second active token with the same name fails with a message."""
    config = _config(tmp_path)
    assert main(["tokens", "--config", str(config), "create", "bot"]) == 0
    assert main(["tokens", "--config", str(config), "create", "bot"]) != 0
    assert "already exists" in capsys.readouterr().err


def test_tokens_create_rejects_unknown_scopes(tmp_path: Path) -> None:
    """An unknown --scope is a usage error."""
    with pytest.raises(SystemExit) as caught:
        main(["tokens", "--config", str(_config(tmp_path)), "create", "x", "--scope", "root"])
    assert caught.value.code == 2


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """`relay --version` prints the version."""
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"relay {__version__}"


# --- the real command (subprocesses) ----------------------------------------------------


@pytest.mark.slow
def test_real_check_config_exit_codes(tmp_path: Path) -> None:
    """The installed `relay check-config` exits 0 on a good file and non-zero on a bad one."""
    good = run_relay("check-config", str(_write(tmp_path, GOOD_CONFIG)), cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    bad = run_relay("check-config", str(_write(tmp_path, BAD_CONFIG, "bad.toml")), cwd=tmp_path)
    assert bad.returncode != 0
    assert "server.port" in bad.stderr and "tokens[0].token" in bad.stderr


@pytest.mark.slow
def test_cli_tokens_work_against_the_running_server(tmp_path: Path) -> None:
    """A token made by `relay tokens create` authenticates; after `revoke` it gets 401."""
    config = _config(tmp_path, tokens=[])
    created = run_relay("tokens", "--config", str(config), "create", "pipeline", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    with RelayServer(config, tmp_path) as server:
        answer = server.request("POST", "/components/api/deployments", {"version": "v1"}, token)
        assert answer.status == 201
        revoked = run_relay("tokens", "--config", str(config), "revoke", "pipeline", cwd=tmp_path)
        assert revoked.returncode == 0, revoked.stderr
        answer = server.request("POST", "/components/api/deployments", {"version": "v2"}, token)
        assert answer.status == 401
        assert answer.body["error"]["code"] == "unauthenticated"
        server.stop()
    assert "rly_" not in server.stdout  # tokens existed: no admin token was invented
    assert token not in server.stderr


@pytest.mark.slow
def test_first_serve_prints_admin_token_once_and_never_logs_tokens(tmp_path: Path) -> None:
    """With no token anywhere, `relay serve` prints an admin token once; logs never hold tokens."""
    config = _config(tmp_path, tokens=[])
    server = RelayServer(config, tmp_path).start()
    server.stop()
    match = re.search(r"^\s+(rly_\S+)$", server.stdout, re.MULTILINE)
    assert match is not None, server.stdout
    token = match.group(1)

    with RelayServer(config, tmp_path) as again:
        answer = again.request("POST", "/components/api/deployments", {"version": "v1"}, token)
        assert answer.status == 201
        url = f"http://127.0.0.1:{again.port}/components/api/deployments?access_token={token}"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
        again.stop()  # gracefully: every log line is written out
    assert "rly_" not in again.stdout  # shown only once

    log_lines = [json.loads(line) for line in (server.stderr + again.stderr).splitlines()]
    events = [line["event"] for line in log_lines]
    assert "admin_token_created" in events
    assert events.count("http_request") >= 3
    assert token not in server.stderr + again.stderr


def test_help_lists_every_command_with_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    """`relay --help` names every subcommand on a line of its own with its help text."""
    import argparse

    from relay.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for choice in sub._choices_actions:
        assert choice.help, choice.dest
        assert re.search(rf"^\s+{re.escape(choice.dest)}\s+{re.escape(choice.help)}", text, re.M)
    assert {c.dest for c in sub._choices_actions} >= {"serve", "worker", "demo", "migrate"}
