"""The HTTP/1.1 connection handler relay serves with: aiohttp's, made to answer like relay.

aiohttp answers a request its parser refuses (a line or header over the limit, an invalid
method, `Content-Length` with chunked, a bad chunk size, an unknown compression) itself,
before any middleware runs: a `text/plain` 400 quoting the offending bytes, and a
traceback with them on stderr. Those bytes may hold an API token. Here the answer is
relay's JSON error quoting nothing, and the log gets one redacted line, rate-limited so
that clients without a token cannot flood it. The handler also closes a connection
whose request head takes longer than `server.header_timeout` to arrive.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMethod,
    ContentEncodingError,
    HttpProcessingError,
    LineTooLong,
)
from aiohttp.web_protocol import RequestHandler

from relay.api.limits import RateLimiter
from relay.errors import MalformedBody, RelayError, UnsupportedContentEncoding
from relay.ids import new_hex_id
from relay.settings import Settings

log = structlog.get_logger("relay.http")

# At most this many lines a second about refused requests (bursts of 20), for all
# clients together; the next line says how many were left out.
REFUSED_LOG_RATE = 5.0
REFUSED_LOG_BURST = 20


class RequestHead(RelayError):
    status = 400
    code = "malformed_request"


class _RefusedLog:
    """Rate-limited `http_request_refused` lines."""

    def __init__(self) -> None:
        self.limiter = RateLimiter(REFUSED_LOG_RATE, REFUSED_LOG_BURST)
        self.suppressed = 0

    def write(self, event: str, **fields: Any) -> None:
        if self.limiter.take("all", time.monotonic()) > 0:
            self.suppressed += 1
            return
        log.warning(event, suppressed=self.suppressed, **fields)
        self.suppressed = 0


refused_log = _RefusedLog()


def head_error(status: int, exc: BaseException | None) -> RelayError:
    """Relay's error for what aiohttp's parser refused; nothing of the request in it."""
    if isinstance(exc, ContentEncodingError):
        return UnsupportedContentEncoding("the body's Content-Encoding is not supported")
    if isinstance(exc, LineTooLong):
        error: RelayError = RequestHead(
            "the request line or a header is longer than the server accepts "
            "(limits.max_line_bytes, limits.max_header_bytes)"
        )
        error.code = "request_head_too_large"
        return error
    if isinstance(exc, BadHttpMethod):
        return RequestHead("the request method is not a valid HTTP method")
    if isinstance(exc, HttpProcessingError):
        return RequestHead("the request is not valid HTTP/1.1 (request line, headers or framing)")
    if status == 504:
        error = RelayError("the request took too long")
        error.status, error.code = 504, "timeout"
        return error
    if 400 <= status < 500:
        return MalformedBody("the request cannot be read")
    return RelayError("internal error; see the server log")


class RelayRequestHandler(RequestHandler):
    """aiohttp's connection handler with JSON error answers and a request-head timeout."""

    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_head = True
        self._head_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        """Parse as aiohttp does; time the head from its first byte to its end."""
        count = self._request_count
        if data and self._awaiting_head and self._head_timer is None:
            self._head_timer = self._loop.call_later(self.header_timeout, self._head_too_slow)
        super().data_received(data)
        if self._request_count != count:
            self._awaiting_head = False
            self._cancel_head_timer()

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        """Answer as aiohttp does; the next bytes start the next request's head. After a
        408 the connection is closed at once: aiohttp would go on reading the rest of a
        body too slow to arrive for its lingering time (10 s), holding the socket."""
        try:
            result = await super().finish_response(request, resp, start_time)
        finally:
            self._awaiting_head = True
        if resp.status == 408 and not resp.keep_alive:
            self.force_close()
        return result

    def connection_lost(self, exc: BaseException | None) -> None:
        """Stop the head timer with the connection."""
        self._cancel_head_timer()
        super().connection_lost(exc)

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        """A connection-level failure aiohttp reports (a body that broke off, one that
        cannot be decompressed): one rate-limited line with its type, not a traceback
        that may quote the request."""
        exc = kwargs.get("exc_info")
        refused_log.write(
            "http_connection_error",
            error=type(exc).__name__ if isinstance(exc, BaseException) else None,
        )

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._awaiting_head and self.transport is not None:
            peer = self.transport.get_extra_info("peername")
            client = peer[0] if isinstance(peer, tuple) else "unknown"
            refused_log.write("request_head_timeout", client=client, limit_s=self.header_timeout)
            self.force_close()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Relay's JSON error instead of aiohttp's text, one redacted log line instead of
        a traceback (an unexpected 500 keeps its traceback, through the redacting log)."""
        error = head_error(status, exc)
        request_id = new_hex_id()
        fields = {
            "request_id": request_id,
            "client": request.remote or "unknown",
            "status": error.status,
            "code": error.code,
            "error": type(exc).__name__ if exc is not None else None,
        }
        if error.status >= 500 and not isinstance(exc, asyncio.TimeoutError):
            log.error("unhandled_error", exc_info=exc, **fields)
        else:
            refused_log.write("http_request_refused", **fields)
        if request.writer.output_size > 0:
            raise ConnectionError("the answer had started: the connection is closed instead")
        response = web.json_response(
            error.to_json(), status=error.status, headers={"X-Request-ID": request_id}
        )
        response.force_close()
        return response


class RelayServer(web.Server):
    """aiohttp's low-level server making RelayRequestHandler connections."""

    header_timeout: float = 10.0

    def __call__(self) -> RelayRequestHandler:
        handler = RelayRequestHandler(self, loop=self._loop, **self._kwargs)
        handler.header_timeout = self.header_timeout
        return handler


class RelayRunner(web.AppRunner):
    """`web.AppRunner` serving through RelayServer (use it wherever relay is served)."""

    def __init__(self, app: web.Application, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.header_timeout = header_timeout

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp builds its Server itself; RelayServer only changes which connection
        # handler it makes, so the built one is taken over as it is.
        server.__class__ = RelayServer
        assert isinstance(server, RelayServer)
        server.header_timeout = self.header_timeout
        return server


def handler_args(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of the connection handler (via RelayRunner): the request head's
    limits (a longer line or header, or more headers, is answered 400) and the idle
    keep-alive timeout."""
    limits = settings.limits
    return {
        "max_line_size": limits.max_line_bytes,
        "max_field_size": limits.max_header_bytes,
        "max_headers": limits.max_headers,
        "keepalive_timeout": settings.server.idle_timeout,
    }
