"""Log set-up and secret redaction (relay/logging.py)."""

from __future__ import annotations

import datetime
import io
import json
import time
from typing import Any

import structlog

from relay.logging import MASK, configure, redact, register_secrets, render_json


def _redacted(**event: Any) -> dict[str, Any]:
    return dict(redact(None, "info", dict(event)))


def test_secret_looking_keys_are_masked() -> None:
    """Values of keys such as token, api_key, password or authorization never show."""
    out = _redacted(
        token="t0k3n-value",
        api_key="k3y",
        password="pw",
        authorization="Bearer x",
        webhook_secret="whsec_x",
        version="v1",
    )
    assert out == {
        "token": MASK,
        "api_key": MASK,
        "password": MASK,
        "authorization": MASK,
        "webhook_secret": MASK,
        "version": "v1",
    }


def test_token_name_and_hash_stay_readable() -> None:
    """Naming a token or showing its hash prefix reveals nothing and stays in the log."""
    assert _redacted(token_name="ci", token_hash="0123456789ab") == {
        "token_name": "ci",
        "token_hash": "0123456789ab",
    }


def test_query_string_tokens_are_scrubbed_from_text() -> None:
    """`access_token=...` inside any logged string is masked."""
    out = _redacted(url="/components/a/deployments?stage=x&access_token=abc123&limit=5")
    assert out["url"] == "/components/a/deployments?stage=x&access_token=***&limit=5"


def test_registered_secrets_are_masked_anywhere() -> None:
    """A known secret value is masked wherever it appears in a logged string."""
    register_secrets(["registered-s3cret-value", "abc"])  # too short values are ignored
    out = _redacted(error="connect failed: registered-s3cret-value rejected", note="abc")
    assert out == {"error": f"connect failed: {MASK} rejected", "note": "abc"}


def written(stream: io.StringIO, timeout: float = 2.0) -> str:
    """What has reached `stream`, waiting for a buffered logger to flush it."""
    deadline = time.monotonic() + timeout
    while not stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    return stream.getvalue()


def test_json_lines_are_written_redacted() -> None:
    """With format=json each event is one JSON line, with level, timestamp and no secret."""
    stream = io.StringIO()
    configure("info", "json", stream)
    log = structlog.get_logger("test")
    log.debug("hidden_below_level")
    log.info("token_used", token="plain-secret-value", path="/x?access_token=plain-secret-2")
    lines = written(stream).splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["event"] == "token_used"
    assert event["level"] == "info"
    assert event["timestamp"].endswith("Z")
    assert "plain-secret" not in lines[0]


def test_secrets_in_nested_values_are_masked_in_the_line() -> None:
    """A known secret inside a dict or list value, or JSON-escaped, never reaches the line."""
    stream = io.StringIO()
    configure("info", "json", stream)
    register_secrets(["nested-s3cret-value", 'quote"d-s3cret'])
    structlog.get_logger("test").info(
        "sent", request={"headers": ["x", "nested-s3cret-value"]}, note='quote"d-s3cret'
    )
    line = written(stream)
    assert "s3cret" not in line
    assert json.loads(line)["request"] == {"headers": ["x", MASK]}


def test_console_format_is_human_readable() -> None:
    """format=console writes plain text lines instead of JSON."""
    stream = io.StringIO()
    configure("debug", "console", stream)
    structlog.get_logger("test").debug("hello_console", answer=42)
    text = written(stream)
    assert "hello_console" in text and "answer=42" in text
    assert not text.lstrip().startswith("{")


def test_auto_format_is_json_when_not_a_terminal() -> None:
    """format=auto writes JSON to a stream that is not a TTY (e.g. a service's log)."""
    stream = io.StringIO()
    configure("info", "auto", stream)
    structlog.get_logger("test").info("auto_mode")
    assert json.loads(written(stream))["event"] == "auto_mode"


def test_render_json_writes_what_json_writes() -> None:
    """The fast renderer gives json's compact, non-ASCII-escaping text, and falls back to
    json for what orjson refuses (lone surrogate, non-string key, 65-bit integer)."""
    for value in (
        {"path": "/components/caf\u00e9", "status": 201, "ms": 0.84, "ok": True, "n": None},
        {"bad": "\ud800"},
        {1: "int key"},
        {"big": 2**64},
    ):
        assert render_json(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    when = datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)
    assert render_json({"at": when}, default=repr) == json.dumps(
        {"at": repr(when)}, separators=(",", ":")
    )
