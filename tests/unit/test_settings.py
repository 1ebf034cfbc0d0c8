"""Configuration: TOML, ${VAR} interpolation, RELAY_* overrides, errors (relay/settings.py)."""

from __future__ import annotations

import tomllib

import pytest

from relay.errors import ConfigError
from relay.settings import Settings, build_settings, interpolate

FULL = """
[server]
host = "0.0.0.0"
port = 8081
max_body_bytes = 2048
strict_components = true

[storage]
url = "sqlite:///${DATA_DIR:-data}/relay.db"

[logging]
level = "debug"
format = "json"

[[tokens]]
name = "ci"
token = "${CI_TOKEN}"
scopes = ["events:write"]
components = ["web-*"]

[[tokens]]
name = "reader"
token = "reader-token-123"
"""


def _load(text: str) -> Settings:
    return build_settings(tomllib.loads(text))


def _errors(text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        _load(text)
    return {d["field"]: d["message"] for d in caught.value.details}


def test_full_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every documented section loads into typed settings."""
    monkeypatch.setenv("CI_TOKEN", "ci-token-from-env")
    settings = _load(FULL)
    assert (settings.server.host, settings.server.port) == ("0.0.0.0", 8081)
    assert settings.server.max_body_bytes == 2048
    assert settings.server.strict_components is True
    assert settings.storage.url == "sqlite:///data/relay.db"
    assert (settings.logging.level, settings.logging.format) == ("debug", "json")
    ci, reader = settings.tokens
    assert ci.token.get_secret_value() == "ci-token-from-env"
    assert (ci.scopes, ci.components) == (["events:write"], ["web-*"])
    assert (reader.scopes, reader.components) == (["events:write", "events:read"], ["*"])


def test_defaults() -> None:
    """An empty file gives the documented defaults."""
    settings = _load("")
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8080)
    assert settings.server.max_body_bytes == 1_048_576
    assert settings.server.strict_components is False
    assert settings.storage.url == "sqlite:///data/relay.db"
    assert settings.tokens == []


def test_variables_and_defaults_are_interpolated() -> None:
    """${VAR} takes the environment's value; ${VAR:-default} falls back to the default."""
    env = {"HOST": "example.com", "EMPTY": ""}
    tree = {
        "a": "https://${HOST}/x",
        "b": "${MISSING:-fallback}",
        "c": "${EMPTY:-used-when-empty}",
        "d": "${MISSING:-}",
        "e": ["${HOST}", {"f": "${HOST}:${PORT:-80}"}],
        "g": 42,
        "h": True,
        "i": "no variables",
    }
    assert interpolate(tree, env) == {
        "a": "https://example.com/x",
        "b": "fallback",
        "c": "used-when-empty",
        "d": "",
        "e": ["example.com", {"f": "example.com:80"}],
        "g": 42,
        "h": True,
        "i": "no variables",
    }


def test_missing_variables_are_all_reported_with_their_locations() -> None:
    """Every unset ${VAR} without a default is an error located at the setting using it."""
    tree = {
        "storage": {"url": "${NO_SUCH_URL}"},
        "tokens": [{"name": "ci", "token": "${NO_SUCH_TOKEN}"}],
    }
    with pytest.raises(ConfigError) as caught:
        interpolate(tree, {"EMPTY": ""})
    assert "NO_SUCH_TOKEN" in caught.value.message and "NO_SUCH_URL" in caught.value.message
    assert [d["field"] for d in caught.value.details] == ["storage.url", "tokens[0].token"]


def test_empty_variable_without_default_is_an_error() -> None:
    """A variable set to the empty string counts as missing (no empty tokens by accident)."""
    with pytest.raises(ConfigError) as caught:
        interpolate({"tokens": [{"token": "${CI_TOKEN}"}]}, {"CI_TOKEN": ""})
    assert caught.value.details == [
        {"field": "tokens[0].token", "message": "${CI_TOKEN} is empty and has no default"}
    ]


def test_interpolated_numbers_are_coerced(monkeypatch: pytest.MonkeyPatch) -> None:
    """A port given as "${PORT:-8080}" becomes the integer setting."""
    monkeypatch.setenv("PORT", "9100")
    assert _load('[server]\nport = "${PORT:-8080}"').server.port == 9100


def test_env_override_beats_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """RELAY_SERVER__PORT=9000 wins over the file; other keys of the section are kept."""
    monkeypatch.setenv("RELAY_SERVER__PORT", "9000")
    monkeypatch.setenv("RELAY_SERVER__STRICT_COMPONENTS", "true")
    settings = _load('[server]\nhost = "0.0.0.0"\nport = 8081')
    assert settings.server.port == 9000
    assert settings.server.host == "0.0.0.0"
    assert settings.server.strict_components is True


def test_env_override_of_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    """RELAY_STORAGE__URL points relay at another database."""
    monkeypatch.setenv("RELAY_STORAGE__URL", "sqlite:////srv/relay.db")
    assert _load('[storage]\nurl = "sqlite:///data/relay.db"').storage.url == (
        "sqlite:////srv/relay.db"
    )


def test_invalid_env_override_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-numeric RELAY_SERVER__PORT is an error located at server.port."""
    monkeypatch.setenv("RELAY_SERVER__PORT", "eighty")
    assert "server.port" in _errors("")


def test_relay_config_variable_is_not_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """RELAY_CONFIG (the config path) does not trip the unknown-key check."""
    monkeypatch.setenv("RELAY_CONFIG", "/etc/relay.toml")
    assert _load("").server.port == 8080


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[server]\nprot = 8080", "server.prot"),
        ("[servr]\nport = 8080", "servr"),
        ("[[tokens]]\nname = 'a'\ntoken = 'long-enough'\nscope = ['admin']", "tokens[0].scope"),
        ("[storage]\nurl = 'sqlite:///x.db'\npool = 3", "storage.pool"),
    ],
)
def test_unknown_keys_are_rejected(text: str, field: str) -> None:
    """A misspelt key is an error at its location, not silently ignored."""
    assert _errors(text)[field] == "Extra inputs are not permitted"


def test_every_error_is_located() -> None:
    """All problems of a file are reported at once, each with a dotted location."""
    errors = _errors(
        """
        [server]
        port = 70000
        max_body_bytes = 10

        [logging]
        level = "loud"

        [[tokens]]
        name = "ok"
        token = "long-enough-token"

        [[tokens]]
        name = "short"
        token = "short"
        scopes = ["events:write", "superuser"]
        """
    )
    assert set(errors) == {
        "server.port",
        "server.max_body_bytes",
        "logging.level",
        "tokens[1].token",
        "tokens[1].scopes[1]",
    }
    assert "at least 8 characters" in errors["tokens[1].token"]


def test_tokens_need_a_name_and_a_token() -> None:
    """A [[tokens]] entry without name or token says which is missing."""
    assert set(_errors("[[tokens]]\nscopes = ['admin']")) == {"tokens[0].name", "tokens[0].token"}


def test_token_values_stay_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Token values do not show in the settings' repr; secrets() lists them for redaction."""
    monkeypatch.setenv("CI_TOKEN", "ci-token-from-env")
    settings = _load(FULL)
    assert "ci-token-from-env" not in repr(settings)
    assert "ci-token-from-env" not in str(settings.model_dump())
    assert set(settings.secrets()) >= {"ci-token-from-env", "reader-token-123"}


def test_error_messages_never_echo_values() -> None:
    """Validation errors describe the problem without repeating the (maybe secret) value."""
    with pytest.raises(ConfigError) as caught:
        _load("[[tokens]]\nname = 'x'\ntoken = 'sh0rt'\nscopes = 'sup3rs3cret'")
    assert "sh0rt" not in str(caught.value.details)
    assert "sup3rs3cret" not in str(caught.value.details)


def test_feed_section_defaults_and_durations() -> None:
    """[feed] defaults to 15 s pings and skipping slow subscribers; durations take units."""
    default = _load("").feed
    assert (default.ping_interval, default.slow_consumer, default.queue_size) == (
        15.0,
        "skip",
        1000,
    )
    feed = _load("[feed]\nping_interval = '250ms'\nslow_consumer = 'disconnect'").feed
    assert (feed.ping_interval, feed.slow_consumer) == (0.25, "disconnect")
    assert set(_errors("[feed]\nslow_consumer = 'buffer'\nqueue_size = 0")) == {
        "feed.slow_consumer",
        "feed.queue_size",
    }
