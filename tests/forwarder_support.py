"""Builders the forwarder tests share: events, send contexts, canned answers, raw requests.

Plain functions (the one fixture, `transport`, is in tests/integration/conftest.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp

from forwarders.base import Event, SendContext
from relay.delivery.http import HttpRequest, HttpResponse, MockTransport, Transport
from relay.standins.base import Receiver

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

Handler = Callable[[HttpRequest], HttpResponse]
R = TypeVar("R", bound=Receiver)


def deployment(**changes: Any) -> dict[str, Any]:
    """A successful production deployment of web 1.2.3 as relay sends it; `changes` override."""
    data: dict[str, Any] = {
        "id": "dep-1",
        "kind": "deployment",
        "component": "web",
        "version": "1.2.3",
        "result": "success",
        "status": "success",
        "stage": "production",
        "host": None,
        "code_name": None,
        "started_at": "2024-05-01T11:50:00.000Z",
        "finished_at": "2024-05-01T11:55:00.000Z",
        "commit_sha": "0123456789abcdef",
        "branch": "main",
        "tag": None,
        "meta_data": {},
        "triggered_by": "ci",
        "created_at": "2024-05-01T11:50:00.000Z",
        "updated_at": "2024-05-01T11:55:00.000Z",
    }
    data.update(changes)
    return data


def deployment_event(event_type: str, *, at: datetime = NOW, **changes: Any) -> Event:
    """An `event_type` event created `at`, about `deployment(**changes)`."""
    return Event("evt-1", event_type, at, deployment(**changes))


def send_context(
    transport: Transport,
    *,
    now: datetime | None = None,
    delivery_id: str = "dlv-1",
    state: dict[str, Any] | None = None,
    shared: dict[str, Any] | None = None,
) -> SendContext:
    """A first attempt's context over `transport` at `now` (default: the current time).

    `state` and `shared` are used as given (not copied), so later sends see their changes.
    """
    return SendContext(
        delivery_id,
        1,
        transport,
        5.0,
        now=now or datetime.now(UTC),
        state={} if state is None else state,
        shared={} if shared is None else shared,
    )


def mock_context(handler: Handler, *, now: datetime = NOW, **kwargs: Any) -> SendContext:
    """A send context over a MockTransport answering with `handler`."""
    return send_context(MockTransport(handler), now=now, **kwargs)


def requests_of(context: SendContext) -> list[HttpRequest]:
    """The requests the mock transport of `context` received."""
    transport = context.transport
    assert isinstance(transport, MockTransport)
    return transport.requests


def answering(status: int, body: bytes = b"{}", headers: dict[str, str] | None = None) -> Handler:
    """A handler always answering `status` with `body`."""
    return lambda request: HttpResponse(status, headers or {}, body)


def raising(error: BaseException) -> Handler:
    """A handler failing like the network: it raises `error`."""

    def fail(request: HttpRequest) -> HttpResponse:
        raise error

    return fail


class RoutedTransport:
    """A real transport that sends requests for some https origins to local stand-ins
    instead (like an /etc/hosts entry), recording which origin each request was for."""

    def __init__(self, inner: Transport, routes: dict[str, str]) -> None:
        self.inner = inner
        self.routes = routes  # "https://build.bugsnag.com" -> "http://127.0.0.1:port"
        self.origins: list[str] = []

    async def send(self, request: HttpRequest, *, timeout: float) -> HttpResponse:
        """Send `request` to the stand-in of its origin (unrouted origins fail)."""
        parts = urlsplit(request.url)
        origin = f"{parts.scheme}://{parts.netloc}"
        self.origins.append(origin)
        local = self.routes[origin] + request.url[len(origin) :]
        return await self.inner.send(replace(request, url=local), timeout=timeout)


@asynccontextmanager
async def serving(receiver: R) -> AsyncIterator[R]:
    """`receiver` serving on a free loopback port for the block."""
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


async def post_raw(
    url: str, body: Any, *, headers: dict[str, str] | None = None, method: str = "POST"
) -> tuple[int, Any]:
    """Send `body` (JSON, or raw bytes as they are) straight to a receiver: status and JSON."""
    kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, headers=headers or {}, **kwargs) as resp,
    ):
        return resp.status, await resp.json()
