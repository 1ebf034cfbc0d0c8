"""Builders shared by the delivery-engine tests: forwarder tables, settings, a running
engine on a real store, and polling for a condition with a deadline (never a long sleep)."""

from __future__ import annotations

import asyncio
import base64
import inspect
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from relay.auth import Principal
from relay.delivery.deliveries import DeliveryService
from relay.delivery.dispatch import Dispatcher
from relay.delivery.http import AiohttpTransport
from relay.delivery.plugins import Registry
from relay.models import Delivery
from relay.records.service import RecordService, planner_for
from relay.settings import Settings, build_settings
from relay.store.base import DeliveryQuery
from relay.store.sqlite.store import SqliteStore
from relay.worker import build_dispatcher
from tests.support import ALLOW_LOOPBACK, TOKENS, sqlite_url

T = TypeVar("T")

# A Standard Webhooks secret (`whsec_` + base64) known to the receivers of these tests.
SECRET = "whsec_" + base64.b64encode(b"delivery-engine-test-secret!").decode()
# Two short retries after the first try, no jitter: a failing delivery is dead in ~0.4 s.
FAST_RETRY: dict[str, Any] = {"schedule": ["0.2s", "0.2s"], "jitter": 0}
# Small delays so that tests take milliseconds; a 5 s poll proves timers drive retries.
FAST_DELIVERY: dict[str, Any] = {
    "poll_interval": "5s",
    "circuit_threshold": 5,
    "circuit_cooldown": "0.5s",
    "shutdown_grace": "1s",
}
ADMIN = Principal(name="root", scopes=frozenset({"admin"}), components=("*",))


def webhook(name: str, url: str, **changes: Any) -> dict[str, Any]:
    """A `[[forwarders]]` table of a webhook with a fast retry schedule."""
    table: dict[str, Any] = {
        "name": name,
        "type": "webhook",
        "url": url,
        "secret": SECRET,
        "timeout": "2s",
        "retry": FAST_RETRY,
    }
    table.update(changes)
    return table


def engine_settings(
    db: Path | None,
    forwarders: list[dict[str, Any]],
    *,
    delivery: dict[str, Any] | None = None,
    registry: Registry | None = None,
    security: dict[str, Any] | None = None,
) -> Settings:
    """Settings of a relay on `db` (memory when None) with the test tokens and `forwarders`
    (loopback allowed unless `security` says otherwise)."""
    return build_settings(
        {
            "storage": {"url": sqlite_url(db) if db is not None else "memory://"},
            "tokens": TOKENS,
            "logging": {"format": "json"},
            "delivery": {**FAST_DELIVERY, **(delivery or {})},
            "forwarders": forwarders,
            "security": ALLOW_LOOPBACK if security is None else security,
        },
        registry,
    )


def free_port() -> int:
    """A loopback TCP port nothing listens on (yet)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def eventually(
    check: Callable[[], T | Awaitable[T]], *, timeout: float = 5.0, what: str = ""
) -> T:
    """Poll `check` (sync or async) until it returns something truthy; return that value.

    Fails with the last value seen when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {what or check!r}; last {value!r}")
        await asyncio.sleep(0.02)


@dataclass
class Engine:
    """A dispatcher running on a real SQLite store, with the services around it."""

    store: SqliteStore
    dispatcher: Dispatcher
    records: RecordService
    deliveries: DeliveryService

    async def record(self, component: str = "api", **fields: Any) -> str:
        """Record a finished deployment (as the API would); returns its id."""
        body = {"version": "1.0.0", "result": "success", **fields}
        result = await self.records.record("deployment", component, body, ADMIN)
        record_id: str = result.answer.body["id"]
        return record_id

    async def of(self, deployment_id: str) -> list[Delivery]:
        """The deliveries of one deployment, with their attempts."""
        return await self.deliveries.of_deployment(deployment_id)

    async def search(self, **filters: Any) -> list[Delivery]:
        """Deliveries matching `filters` (DeliveryQuery fields)."""
        return await self.store.list_deliveries(DeliveryQuery(**filters))

    async def settled(self, deployment_id: str, forwarder: str, status: str) -> Delivery:
        """Wait until the deployment's delivery to `forwarder` has `status`; return it."""

        async def check() -> Delivery | None:
            for d in await self.of(deployment_id):
                if d.forwarder == forwarder and d.status == status:
                    return d
            return None

        return await eventually(check, what=f"{forwarder} delivery {status}")


@asynccontextmanager
async def running_engine(settings: Settings, db: Path) -> AsyncIterator[Engine]:
    """Open a SqliteStore on `db`, start the dispatcher with the real HTTP transport."""
    store = SqliteStore(db)
    await store.open()
    transport = AiohttpTransport(allow_networks=settings.security.networks())
    dispatcher = build_dispatcher(settings, store, transport)
    records = RecordService(
        store, planner_for(settings.forwarders), on_recorded=lambda _: dispatcher.wake()
    )
    await dispatcher.start()
    try:
        yield Engine(store, dispatcher, records, DeliveryService(store, dispatcher))
    finally:
        await dispatcher.stop(settings.delivery.shutdown_grace)
        await transport.close()
        await store.close()
