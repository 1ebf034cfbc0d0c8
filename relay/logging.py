"""structlog set-up: JSON lines (console on a TTY), request ids, secret redaction."""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import orjson
import structlog

_SECRET_KEYS = re.compile(r"(token|secret|api_key|apikey|password|authorization)", re.I)
_SECRET_QUERY = re.compile(r"((?:access_token|api_key|token)=)[^&\s\"']+", re.I)
MASK = "***"
# Keys that match _SECRET_KEYS but identify a token without revealing it.
_NOT_SECRET = frozenset({"token_name", "token_hash"})

_known_secrets: set[str] = set()
# What is looked for in a line: each secret as given and as JSON writes it (lines are
# scrubbed once rendered), longest first so a secret containing another is masked whole.
_forms: list[str] = []


def register_secrets(values: Iterable[str]) -> None:
    """Remember secret values so that they are masked wherever they appear in a log line."""
    _known_secrets.update(v for v in values if v and len(v) >= 4)
    forms = {f for v in _known_secrets for f in (v, json.dumps(v, ensure_ascii=False)[1:-1])}
    _forms[:] = sorted(forms, key=len, reverse=True)


def _scrub(value: str) -> str:
    if "=" in value:  # a query string may carry a credential
        value = _SECRET_QUERY.sub(lambda m: m.group(1) + MASK, value)
    for secret in _forms:
        if secret in value:
            value = value.replace(secret, MASK)
    return value


@functools.cache
def _secret_key(key: str) -> bool:
    return key not in _NOT_SECRET and _SECRET_KEYS.search(key) is not None


def mask_secret_keys(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask the value of every secret-looking key."""
    for key, value in event_dict.items():
        if value is not None and _secret_key(key):
            event_dict[key] = MASK
    return event_dict


def scrub_rendered(_: Any, __: str, line: Any) -> str:
    """structlog processor after the renderer: mask known secrets and query-string
    credentials anywhere in the line, nested values included, in one pass."""
    return _scrub(str(line))


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask secret-looking keys and any known secret value."""
    for key, value in list(mask_secret_keys(_, __, event_dict).items()):
        if isinstance(value, str) and value != MASK:
            event_dict[key] = _scrub(value)
    return event_dict


class BufferedLogger:
    """Writes rendered lines in batches, at most 50 ms after they were logged, instead of
    one write per line: a write is a system call and the access log has a line per
    request. Warnings and errors are written at once."""

    FLUSH_EVERY = 0.05

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._pending = threading.Event()
        threading.Thread(target=self._flusher, name="relay-log-flush", daemon=True).start()
        atexit.register(self.flush)

    def msg(self, message: str) -> None:
        """Queue one line."""
        with self._lock:
            self._lines.append(message + "\n")
        if not self._pending.is_set():
            self._pending.set()

    def msg_now(self, message: str) -> None:
        """Queue one line and write everything queued."""
        self.msg(message)
        self.flush()

    debug = info = msg
    warning = error = critical = exception = msg_now

    def flush(self) -> None:
        """Write what is queued."""
        with self._lock:
            lines, self._lines = self._lines, []
            self._pending.clear()
        if lines:
            with contextlib.suppress(ValueError, OSError):
                self._stream.write("".join(lines))
                self._stream.flush()

    def _flusher(self) -> None:
        while True:
            self._pending.wait()
            time.sleep(self.FLUSH_EVERY)
            self.flush()


# orjson renders a line in a fraction of json's time (compact: no space after `:`);
# datetimes and dataclasses go to structlog's fallback as before (their repr), and what
# orjson refuses (a lone surrogate, a non-string key, an integer beyond 64 bits) is
# rendered by json instead.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def render_json(obj: Any, **kwargs: Any) -> str:
    """Compact JSON text, `json.dumps(obj, ensure_ascii=False, separators=(",", ":"),
    default=...)`, through orjson where it can."""
    try:
        return orjson.dumps(obj, default=kwargs.get("default"), option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), **kwargs)


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Configure structlog for the process; `fmt` is json, console or auto (TTY → console)."""
    stream = stream or sys.stderr
    console = fmt == "console" or (fmt == "auto" and stream.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False)
        if console
        else structlog.processors.JSONRenderer(serializer=render_json)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_secret_keys,
            renderer,
            scrub_rendered,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=_factory(stream),
        cache_logger_on_first_use=False,
    )


_loggers: dict[int, BufferedLogger] = {}


def _factory(stream: TextIO) -> Any:
    # One buffer (and flusher thread) per stream, however often configure() is called.
    logger = _loggers.get(id(stream))
    if logger is None:
        logger = _loggers[id(stream)] = BufferedLogger(stream)
    return lambda *args: logger


class _LibraryHandler(logging.Handler):
    """Standard-library log records (aiohttp, asyncio) as relay's redacted JSON lines: the
    message cut short and the exception's type only, never a traceback, which could quote
    a request and the token in it."""

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        structlog.get_logger(record.name).log(
            record.levelno,
            "library_log",
            logger=record.name,
            message=message.splitlines()[0][:200] if message else "",
            error=type(exc).__name__ if exc is not None else None,
        )


_library_handler = _LibraryHandler()


def capture_library_logs(level: str = "info") -> None:
    """Send the standard library's log records (aiohttp's, asyncio's) through structlog
    instead of Python's last-resort handler, which prints raw tracebacks to stderr."""
    root = logging.getLogger()
    if _library_handler not in root.handlers:
        root.addHandler(_library_handler)
    root.setLevel(max(logging.getLevelNamesMapping()[level.upper()], logging.INFO))
