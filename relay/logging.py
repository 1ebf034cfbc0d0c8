"""structlog set-up: JSON lines (console on a TTY), request ids, secret redaction."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

_SECRET_KEYS = re.compile(r"(token|secret|api_key|apikey|password|authorization)", re.I)
_SECRET_QUERY = re.compile(r"((?:access_token|api_key|token)=)[^&\s\"']+", re.I)
MASK = "***"
# Keys that match _SECRET_KEYS but identify a token without revealing it.
_NOT_SECRET = frozenset({"token_name", "token_hash"})

_known_secrets: set[str] = set()


def register_secrets(values: Iterable[str]) -> None:
    """Remember secret values so that they are masked wherever they appear in a log line."""
    _known_secrets.update(v for v in values if v and len(v) >= 4)


def _scrub(value: str) -> str:
    value = _SECRET_QUERY.sub(lambda m: m.group(1) + MASK, value)
    for secret in _known_secrets:
        if secret in value:
            value = value.replace(secret, MASK)
    return value


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask secret-looking keys and any known secret value."""
    for key, value in list(event_dict.items()):
        if _SECRET_KEYS.search(key) and key not in _NOT_SECRET and value is not None:
            event_dict[key] = MASK
        elif isinstance(value, str):
            event_dict[key] = _scrub(value)
    return event_dict


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Configure structlog for the process; `fmt` is json, console or auto (TTY → console)."""
    stream = stream or sys.stderr
    console = fmt == "console" or (fmt == "auto" and stream.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False)
        if console
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
