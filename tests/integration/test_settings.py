"""Loading configuration files from disk (relay/settings.py load_settings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.errors import ConfigError
from relay.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_file_is_read_and_interpolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A TOML file is read, its ${VAR}s replaced from the environment."""
    monkeypatch.setenv("DEPLOY_TOKEN", "from-the-environment")
    path = tmp_path / "relay.toml"
    path.write_text(
        '[server]\nport = 9001\n[[tokens]]\nname = "ci"\ntoken = "${DEPLOY_TOKEN}"\n',
        encoding="utf-8",
    )
    settings = load_settings(path)
    assert settings.server.port == 9001
    assert settings.tokens[0].token.get_secret_value() == "from-the-environment"


def test_relay_config_names_the_default_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a path, the file named by RELAY_CONFIG is loaded."""
    path = tmp_path / "elsewhere.toml"
    path.write_text("[server]\nport = 9002\n", encoding="utf-8")
    monkeypatch.setenv("RELAY_CONFIG", str(path))
    assert load_settings().server.port == 9002


def test_env_override_beats_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RELAY_SERVER__PORT=9000 wins over the file's port."""
    path = tmp_path / "relay.toml"
    path.write_text("[server]\nport = 9003\n", encoding="utf-8")
    monkeypatch.setenv("RELAY_SERVER__PORT", "9000")
    assert load_settings(path).server.port == 9000


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A path that does not exist raises ConfigError naming it."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    """A file that is not TOML raises ConfigError with the parser's position."""
    path = tmp_path / "broken.toml"
    path.write_text('[server]\nport = "8080\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML") as caught:
        load_settings(path)
    assert "line 2" in caught.value.details[0]["message"]


def test_errors_name_the_file(tmp_path: Path) -> None:
    """Validation errors of a file start with the file's path."""
    path = tmp_path / "relay.toml"
    path.write_text("[server]\nport = -1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.message.startswith(str(path))
    assert [d["field"] for d in caught.value.details] == ["server.port"]


def test_shipped_quick_start_config_loads() -> None:
    """config/relay.toml (what `make run` serves) is valid and has the README's CI token."""
    settings = load_settings(ROOT / "config" / "relay.toml")
    assert settings.storage.url.startswith("sqlite:///")
    [ci] = settings.tokens
    assert ci.token.get_secret_value() == "some-api-token"
    assert set(ci.scopes) == {"events:write", "events:read"}
