"""A target's own reason for refusing a request, in a few words.

A delivery's `last_error` is what a person reads in a list of dead deliveries, so it
carries the target's reason ("apiKey invalid", Sentry's `detail`, a GraphQL message)
besides the status. Pure functions over the answer's body; the caller masks secrets.
"""

from __future__ import annotations

import json
from typing import Any

from relay.delivery.http import HttpResponse

REASON_CHARS = 160
# Keys whose string value is the whole reason, in the order they are looked for.
_REASON_KEYS = ("message", "detail", "title", "error_description", "error")
_MAX_DEPTH = 4


def answer_reason(response: HttpResponse, limit: int = REASON_CHARS) -> str:
    """The reason the answer gives, on one line and at most `limit` characters ("" if none).

    Reads the usual error shapes: `{"errors": [...]}` (Bugsnag, GraphQL), `{"detail": …}`
    (Sentry), `{"message": …}` (Grafana), `{"error": {"title": …}}` (New Relic REST),
    field errors `{"field": ["problem"]}` (Sentry); else a short plain-text body.
    """
    try:
        payload = json.loads(response.body)
    except ValueError:
        return _plain(response.text(limit * 4), limit)
    return shorten("; ".join(_reasons(payload, 0)), limit)


def shorten(text: str, limit: int = REASON_CHARS) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis when longer."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _plain(text: str, limit: int) -> str:
    # An HTML page (a proxy's error page, a login form) says nothing useful in a line.
    if not text.strip() or text.lstrip().startswith("<"):
        return ""
    return shorten(text, limit)


def _reasons(value: Any, depth: int) -> list[str]:
    if depth > _MAX_DEPTH:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [r for item in value for r in _reasons(item, depth + 1)]
    if not isinstance(value, dict):
        return []
    if "errors" in value:
        return _reasons(value["errors"], depth + 1)
    for key in _REASON_KEYS:
        found = value.get(key)
        if isinstance(found, str) and found.strip():
            return [found]
        if key == "error" and isinstance(found, dict):
            return _reasons(found, depth + 1)
    # Field errors: {"refs": ["Invalid repository names: x"], "url": ["Enter a valid URL."]}
    return [
        f"{field}: {reason}"
        for field, problems in value.items()
        if isinstance(problems, list | dict)
        for reason in _reasons(problems, depth + 1)
    ]
