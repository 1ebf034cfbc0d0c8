"""Outgoing HTTP: a one-method transport interface, the real one and a mock.

Forwarders build `HttpRequest`s with pure functions and hand them to a
`Transport`; tests swap in `MockTransport` to check requests without a network.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from yarl import URL

from relay import __version__
from relay.delivery.netguard import AddressRefused, GuardedResolver, Network, check_literal

USER_AGENT = f"relay/{__version__}"
# Responses are kept for diagnostics only: never read more than this from a target.
MAX_RESPONSE_BYTES = 64 * 1024
LITERAL_CACHE_SIZE = 1024
# The headers of every JSON request relay makes (a forwarder's own headers come after).
JSON_HEADERS = {"Content-Type": "application/json", "User-Agent": USER_AGENT}


def json_body(payload: Any) -> bytes:
    """`payload` as the compact UTF-8 JSON every request body is."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class HttpRequest:
    """An outgoing request, fully built before any I/O."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def json_request(
        cls, method: str, url: str, payload: Any, headers: Mapping[str, str] | None = None
    ) -> HttpRequest:
        """A request with a JSON body and the headers every target gets."""
        return cls(method, url, {**JSON_HEADERS, **(headers or {})}, json_body(payload))

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True)
class HttpResponse:
    """A target's answer; `body` holds at most MAX_RESPONSE_BYTES."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """A header value, case-insensitively."""
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    def text(self, limit: int = 2048) -> str:
        """The first `limit` bytes of the body as text (for attempt records)."""
        return self.body[:limit].decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class TransportError(OSError):
    """The request did not get an answer (refused, reset, TLS, protocol error)."""


class Transport(Protocol):
    """Sends one request and returns its answer; raises OSError/TimeoutError on failure."""

    async def send(self, request: HttpRequest, *, timeout: float) -> HttpResponse:
        """Send `request`, waiting at most `timeout` seconds in all."""


class AiohttpTransport:
    """The real transport: one pooled aiohttp session, no redirects, bounded reads.

    Every address it connects to passes the SSRF guard (relay.delivery.netguard): loopback,
    private, link-local and metadata addresses raise AddressRefused unless a network
    of `allow_networks` holds them.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        allow_networks: Sequence[Network] = (),
    ) -> None:
        self._session = session
        self._allow = list(allow_networks)
        # The guard's answer for a URL whose host is a literal address, by URL: it
        # depends on nothing else, and forwarders send to few URLs.
        self._literal: dict[str, AddressRefused | None] = {}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            resolver = GuardedResolver(self._allow)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, resolver=resolver),
                auto_decompress=True,
            )
        return self._session

    def _check_literal(self, url: str) -> None:
        # aiohttp does not ask the resolver about literal IP addresses: check them here.
        if url not in self._literal:
            if len(self._literal) >= LITERAL_CACHE_SIZE:
                self._literal.clear()
            try:
                check_literal(_host(url), self._allow)
                self._literal[url] = None
            except AddressRefused as exc:
                self._literal[url] = exc
        refused = self._literal[url]
        if refused is not None:
            raise AddressRefused(*refused.args)

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            # The whole request, answer read included; never rounded up to a second.
            timeout = aiohttp.ClientTimeout(total=seconds, ceil_threshold=math.inf)
            self._timeouts[seconds] = timeout
        return timeout

    async def send(self, request: HttpRequest, *, timeout: float) -> HttpResponse:
        """POST/PATCH/... `request`; the body read stops at MAX_RESPONSE_BYTES."""
        self._check_literal(request.url)
        try:
            async with self._client().request(
                request.method,
                request.url,
                data=request.body or None,
                headers=request.headers,
                allow_redirects=False,
                timeout=self._timeout(timeout),
            ) as resp:
                body = await resp.content.read(MAX_RESPONSE_BYTES)
                return HttpResponse(resp.status, dict(resp.headers), body)
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, AddressRefused):
                raise exc.os_error from None
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        except TimeoutError:
            # Also aiohttp's connection timeout, a ClientError too: no answer in time.
            raise TimeoutError(f"no answer within {timeout:g}s") from None
        except aiohttp.ClientError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        """Close pooled connections."""
        if self._session is not None:
            await self._session.close()


def _host(url: str) -> str:
    try:
        return URL(url).host or ""
    except ValueError:
        return ""  # aiohttp refuses the URL itself


MockHandler = Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]


class MockTransport:
    """A transport answering from a function; keeps every request it was given."""

    def __init__(self, handler: MockHandler) -> None:
        self.handler = handler
        self.requests: list[HttpRequest] = []

    async def send(self, request: HttpRequest, *, timeout: float) -> HttpResponse:
        """Record `request` and answer with the handler's response."""
        self.requests.append(request)
        result = self.handler(request)
        if inspect.isawaitable(result):
            async with asyncio.timeout(timeout):
                return await result
        return result
