"""The target's own reason, read from the usual error shapes of what it answered."""

from __future__ import annotations

import json
from typing import Any

import pytest

from forwarders.answers import answer_reason, shorten
from forwarders.base import PermanentFailure, RetryLater, check_response
from forwarders.common import masking
from relay.delivery.http import HttpResponse
from tests.forwarder_support import NOW


def answer(body: Any, status: int = 400) -> HttpResponse:
    """An answer with `body` as JSON (bytes as they are)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(status, {}, raw)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"errors": ["apiKey invalid"]}, "apiKey invalid"),
        ({"errors": ["a", "b"]}, "a; b"),
        ({"errors": [{"message": "Entity not found", "extensions": {}}]}, "Entity not found"),
        ({"detail": "Invalid token"}, "Invalid token"),
        ({"message": "Failed to save annotation"}, "Failed to save annotation"),
        ({"error": {"title": "Application not found"}}, "Application not found"),
        ({"error": "busy"}, "busy"),
        ({"url": ["Enter a valid URL."]}, "url: Enter a valid URL."),
        ({"refs": [{"commit": ["Commit too long"]}]}, "refs: commit: Commit too long"),
        ({"ok": True}, ""),
        (b"upstream connect error\n  or disconnect", "upstream connect error or disconnect"),
        (b"<html><body>502 Bad Gateway</body></html>", ""),
        (b"", ""),
    ],
)
def test_answer_reason_reads_the_usual_shapes(body: Any, reason: str) -> None:
    """Bugsnag, GraphQL, Sentry, Grafana, New Relic REST, field errors, plain text; not HTML."""
    assert answer_reason(answer(body)) == reason


def test_answer_reason_is_short_and_on_one_line() -> None:
    """A long reason is cut with an ellipsis at 160 characters."""
    reason = answer_reason(answer({"message": "word\n" * 100}))
    assert len(reason) == 160 and reason.endswith("…") and "\n" not in reason
    assert shorten("a  b\tc") == "a b c"


def test_check_response_puts_the_reason_after_the_status() -> None:
    """The failure reads `<target> answered HTTP <status>: <reason>`, or no colon at all."""
    with pytest.raises(PermanentFailure) as dead:
        check_response(answer({"errors": ["apiKey invalid"]}), NOW, what="Bugsnag")
    assert dead.value.reason == "Bugsnag answered HTTP 400: apiKey invalid"
    with pytest.raises(RetryLater) as later:
        check_response(answer(b"", 503), NOW, what="Grafana")
    assert later.value.reason == "Grafana answered HTTP 503"


def test_a_secret_the_target_echoes_is_masked_in_the_reason() -> None:
    """The reason goes into last_error and logs: a key quoted back is masked there too."""
    key = "0123456789abcdef0123456789abcdef"
    with pytest.raises(PermanentFailure) as dead, masking([key]):
        check_response(answer({"errors": [f"apiKey {key} invalid"]}), NOW, what="Bugsnag")
    assert dead.value.reason == "Bugsnag answered HTTP 400: apiKey *** invalid"


@pytest.mark.parametrize("pad", [120, 140, 150, 2030, 2040])
def test_a_secret_cut_off_by_the_length_limits_is_masked_too(pad: int) -> None:
    """An echoed key the reason (160 characters) or the excerpt (2,048 bytes) cuts keeps
    none of its start: what is left of it is masked as well."""
    key = "tok_0123456789abcdefghijKLMNOP"
    body = f"{'x' * pad} key={key} and more".encode()
    with pytest.raises(PermanentFailure) as dead, masking([key]):
        check_response(answer(body), NOW, what="Hook")
    for text in (dead.value.reason, dead.value.excerpt):
        assert key[:4] not in text  # at most three characters of it, which tell nothing
