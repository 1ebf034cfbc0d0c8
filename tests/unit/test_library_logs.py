"""Standard-library log records become one redacted JSON line each, without a traceback."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from relay.logging import _library_handler, capture_library_logs, configure
from tests.unit.test_logging import written


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Library logs routed into a JSON stream; the root logger restored afterwards."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    configure("info", "json", stream)
    capture_library_logs("info")
    yield stream
    root.removeHandler(_library_handler)
    root.setLevel(level)


def test_an_aiohttp_exception_log_is_one_line_without_traceback(captured: io.StringIO) -> None:
    """`logger.exception(...)` of a library gives one JSON line naming the error type; the
    traceback and the request bytes in the exception never reach the log."""
    try:
        raise ValueError("Got more than 8190 bytes: b'/x?access_token=tok-123456789'")
    except ValueError:
        logging.getLogger("aiohttp.server").exception("Error handling request\nsecond line")
    lines = written(captured).splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["event"] == "library_log"
    assert event["logger"] == "aiohttp.server"
    assert event["message"] == "Error handling request"
    assert event["error"] == "ValueError"
    assert "Traceback" not in lines[0] and "tok-123456789" not in lines[0]


def test_capturing_twice_adds_one_handler(captured: io.StringIO) -> None:
    """Configuring again does not duplicate every line."""
    capture_library_logs("info")
    assert logging.getLogger().handlers.count(_library_handler) == 1
