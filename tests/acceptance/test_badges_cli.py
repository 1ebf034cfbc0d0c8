"""`relay badges url` and `relay badges rotate` against a running `relay serve` on the
same SQLite file: the printed URLs open the badge, and stop working after a rotation."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from relay.cli import main
from tests.acceptance.server import RelayServer, run_relay, write_config
from tests.support import CI_TOKEN, TOKENS


def printed(stdout: str) -> dict[str, str]:
    """The lines of `relay badges url` by their first word."""
    return dict(line.split(maxsplit=1) for line in stdout.splitlines() if line.strip())


def path_of(url: str) -> str:
    """The path and query of a URL (what the test server is asked)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_badge_urls_open_the_badge_until_the_secret_rotates(tmp_path: Path) -> None:
    """The SVG, JSON and shields URLs carry a key that works without a token; rotate
    revokes it, and a new `badges url` prints a working one."""
    config = write_config(tmp_path / "relay.toml", tmp_path / "relay.db", TOKENS)
    with RelayServer(config, tmp_path) as server:
        base = f"http://127.0.0.1:{server.port}"
        body = {"version": "2.0.1", "stage": "production"}
        assert server.request("POST", "/components/api/deployments", body, CI_TOKEN).status == 201
        args = ("badges", "--config", str(config), "url", "api", "--stage", "production")
        shown = run_relay(*args, "--base-url", base, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        urls = printed(shown.stdout)
        assert urls["markdown"] == f"![api production]({urls['svg']})"
        assert unquote(urls["shields"].split("url=", 1)[1]) == urls["json"]
        answer = server.request("GET", path_of(urls["json"]))
        assert (answer.status, answer.body["message"]) == (200, "2.0.1 ✓")
        with urllib.request.urlopen(urls["svg"], timeout=10) as response:
            assert response.status == 200
            assert b"2.0.1" in response.read()
        assert server.request("GET", "/components/api/badge.json").status == 401
        rotated = run_relay("badges", "--config", str(config), "rotate", cwd=tmp_path)
        assert rotated.returncode == 0, rotated.stderr
        assert server.request("GET", path_of(urls["json"])).status == 403
        fresh = printed(run_relay(*args, "--base-url", base, cwd=tmp_path).stdout)
        assert fresh["json"] != urls["json"]
        assert server.request("GET", path_of(fresh["json"])).status == 200


def test_rotate_refuses_when_the_secret_is_in_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With `badges.secret` set, rotating means changing the config: the command says so."""
    config = write_config(tmp_path / "relay.toml", tmp_path / "relay.db", TOKENS)
    with config.open("a", encoding="utf-8") as out:
        out.write('[badges]\nsecret = "a-configured-badge-secret"\n')
    assert main(["badges", "--config", str(config), "rotate"]) == 2
    err = capsys.readouterr().err
    assert "badges.secret" in err and "a-configured-badge-secret" not in err


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_urls_on_a_wildcard_address_come_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], host: str
) -> None:
    """Without server.public_url or --base-url, a relay listening on every address gives
    URLs no browser elsewhere can open: the command says so (and still prints them)."""
    config = write_config(tmp_path / "relay.toml", tmp_path / "relay.db", TOKENS)
    text = config.read_text(encoding="utf-8").replace('host = "127.0.0.1"', f'host = "{host}"')
    config.write_text(text, encoding="utf-8")
    assert main(["badges", "--config", str(config), "url", "web"]) == 0
    out, err = capsys.readouterr()
    assert printed(out)["svg"].startswith("http://")
    assert "--base-url" in err and "server.public_url" in err
    args = [
        "badges",
        "--config",
        str(config),
        "url",
        "web",
        "--base-url",
        "https://relay.example.com",
    ]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert printed(out)["svg"].startswith("https://relay.example.com/components/web/badge.svg")
    assert err == ""
