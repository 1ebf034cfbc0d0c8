"""HTTP to relay with the stdlib: retries, idempotency keys, timeouts, masked dry runs."""

from __future__ import annotations

import http.client
import json
import random
import sys
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any, TextIO

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from relay import __version__
from relay.client.console import silence

MASK = "***"
RETRY_AFTER_CAP = 30.0  # a longer Retry-After is not worth holding a pipeline for
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})


class ClientError(Exception):
    """A request that failed for good; `str()` is the one line the user sees."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class Transient(ClientError):
    """Worth another try: not reached, rate limited, or a 5xx.

    `maybe_applied` is False only when relay certainly did not act on the request
    (not connected, 429), True when it may have (timeout, reset, 5xx)."""

    def __init__(
        self,
        message: str,
        *,
        maybe_applied: bool,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, status)
        self.maybe_applied = maybe_applied
        self.retry_after = retry_after


@dataclass(frozen=True)
class Answer:
    """A 2xx answer: its status and JSON (or text) body."""

    status: int
    body: Any


@dataclass(frozen=True)
class Connection:
    """Where relay is and how to talk to it."""

    url: str
    token: str | None
    timeout: float = 10.0
    attempts: int = 4
    dry_run: bool = False
    verbose: bool = False
    log: TextIO = field(default=sys.stderr)
    out: TextIO = field(default=sys.stdout)

    def masked(self, text: str) -> str:
        """`text` with the token replaced by ***."""
        return text.replace(self.token, MASK) if self.token else text


def utf8(text: str) -> bytes:
    """`text` as UTF-8. Arguments that were not UTF-8 reach Python as lone surrogates
    (surrogateescape); their bytes become U+FFFD here instead of failing the encoding."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace").encode("utf-8")


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _error_message(status: int, body: Any) -> str:
    """`409 invalid_transition: the deployment already ended…; field: message`."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return f"HTTP {status}"
    text = f"{status} {error.get('code', 'error')}: {error.get('message', '')}".rstrip(": ")
    for detail in error.get("details") or []:
        if isinstance(detail, dict):
            text += f"; {detail.get('field')}: {detail.get('message')}"
    return text


def _decode(raw: bytes, ctype: str | None) -> Any:
    """JSON when the answer says so (and is), else the text."""
    if ctype and "json" in ctype:
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError:
            pass
    return raw.decode("utf-8", "replace")


def _wait(state: RetryCallState) -> float:
    """Retry-After when relay gave one, else exponential backoff with full jitter."""
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, Transient) and exc.retry_after is not None:
        return min(exc.retry_after, RETRY_AFTER_CAP)
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (state.attempt_number - 1))
    return random.uniform(ceiling / 2, ceiling)


class Transport:
    """Sends requests to one relay."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        text: str | None = None,
        key: str | None = None,
        retry_applied: bool = True,
    ) -> Answer:
        """One logical request, retried on Transient errors with the same Idempotency-Key.

        `retry_applied=False` gives up at once (raising the Transient) when relay may
        already have acted, for writes that a key does not make safe to repeat."""
        if method in WRITES and key is None:
            key = str(uuid.uuid4())
        data, ctype = self._encode(body, text)
        headers = {"User-Agent": f"relay-client/{__version__}", "Accept": "application/json"}
        if ctype:
            headers["Content-Type"] = ctype
        if key:
            headers["Idempotency-Key"] = key
        url = self.conn.url.rstrip("/") + path
        if self.conn.dry_run:
            self._show(method, url, headers, data)
            return Answer(0, None)

        def keep_trying(exc: BaseException) -> bool:
            return isinstance(exc, Transient) and (retry_applied or not exc.maybe_applied)

        retrying = Retrying(
            stop=stop_after_attempt(max(1, self.conn.attempts)),
            wait=_wait,
            retry=retry_if_exception(keep_trying),
            before_sleep=self._note_retry,
            reraise=True,
        )
        answer: Answer = retrying(self._once, method, url, headers, data)
        return answer

    @staticmethod
    def _encode(body: Any, text: str | None) -> tuple[bytes | None, str | None]:
        if text is not None:
            return utf8(text), "text/plain; charset=utf-8"
        if body is None:
            return None, None
        return utf8(json.dumps(body, ensure_ascii=False)), "application/json"

    def _once(self, method: str, url: str, headers: dict[str, str], data: bytes | None) -> Answer:
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        if self.conn.token:
            request.add_unredirected_header("Authorization", f"Bearer {self.conn.token}")
        where = self.conn.masked(url)
        try:
            with urllib.request.urlopen(request, timeout=self.conn.timeout) as response:
                ctype = response.headers.get("Content-Type")
                answer = Answer(response.status, _decode(response.read(), ctype))
        except urllib.error.HTTPError as exc:
            raise self._refusal(exc) from None
        except urllib.error.URLError as exc:
            # urllib wraps only errors of connecting and sending: relay never read it all.
            raise Transient(
                f"cannot reach relay at {where}: {exc.reason}", maybe_applied=False
            ) from None
        except (TimeoutError, http.client.HTTPException, ConnectionError) as exc:
            what = "timed out" if isinstance(exc, TimeoutError) else f"connection lost ({exc})"
            raise Transient(f"relay at {where} {what}", maybe_applied=True) from None
        if self.conn.verbose:
            print(f"relay: {method} {where} -> {answer.status}", file=self.conn.log)
            warnings = answer.body.get("warnings") if isinstance(answer.body, dict) else None
            for warning in warnings or []:
                print(f"relay: relay says: {self.conn.masked(str(warning))}", file=self.conn.log)
        return answer

    def _refusal(self, exc: urllib.error.HTTPError) -> ClientError:
        """The error of a non-2xx answer: Transient for 429 and 5xx."""
        status = exc.code
        payload = _decode(exc.read(), exc.headers.get("Content-Type"))
        retry_after = _retry_after(exc.headers.get("Retry-After"))
        exc.close()
        message = f"relay answered {self.conn.masked(_error_message(status, payload))}"
        if status == 429 or status >= 500:
            # A 5xx may come from a proxy that lost relay's answer to a write it made.
            return Transient(
                message, maybe_applied=status != 429, retry_after=retry_after, status=status
            )
        return ClientError(message, status, payload)

    def _note_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if self.conn.verbose and state.next_action is not None:
            wait = state.next_action.sleep
            print(f"relay: {exc}; retrying in {wait:.1f}s", file=self.conn.log)

    def _show(self, method: str, url: str, headers: dict[str, str], data: bytes | None) -> None:
        """Print the request instead of sending it (token masked)."""
        lines = [f"{method} {self.conn.masked(url)}"]
        if self.conn.token:
            lines.append(f"Authorization: Bearer {MASK}")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if data is not None:
            lines += ["", self.conn.masked(data.decode("utf-8"))]
        try:
            print("\n".join(lines), file=self.conn.out, flush=True)
        except BrokenPipeError:
            silence(self.conn.out)
