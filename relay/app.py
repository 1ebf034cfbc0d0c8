"""create_app(settings): wiring only."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TextIO

import structlog
from aiohttp import web

from relay.api import all_routes
from relay.api.middleware import authenticate, request_context
from relay.api.routes import register
from relay.auth import Authenticator, generate_token, hash_token, new_token_record
from relay.circuit import CircuitBreaker
from relay.deliveries import DeliveryService
from relay.dispatch import Dispatcher, Target
from relay.http import AiohttpTransport, Transport
from relay.keys import (
    AUTH,
    DELIVERIES,
    DISPATCHER,
    METRICS,
    OPENAPI,
    RECORDS,
    SETTINGS,
    STORE,
    TRANSPORT,
)
from relay.logging import register_secrets
from relay.metrics import Metrics
from relay.openapi import build_openapi
from relay.plugins import Registry, default_registry
from relay.service import RecordService, planner_for
from relay.settings import Settings
from relay.store import Store, open_store
from relay.store.base import NewEvent, TokenRecord

log = structlog.get_logger("relay.app")


def static_tokens(settings: Settings) -> list[TokenRecord]:
    """The `[[tokens]]` of the config as hashed records."""
    return [
        new_token_record(t.name, t.token.get_secret_value(), t.scopes, t.components)
        for t in settings.tokens
    ]


async def bootstrap_admin_token(store: Store, settings: Settings, out: TextIO) -> str | None:
    """On a first start with no token anywhere, create an admin token and show it once."""
    if settings.tokens or await store.list_tokens():
        return None
    token = generate_token()
    await store.add_token(new_token_record("admin", token, ["admin"], ["*"]))
    register_secrets([token])
    log.warning("admin_token_created", token_name="admin", token_hash=hash_token(token)[:12])
    out.write(
        "\nNo API token existed, so relay created an admin token. It is shown only this once;\n"
        "keep it somewhere safe (`relay tokens create` makes more):\n\n"
        f"    {token}\n\n"
    )
    out.flush()
    return token


def build_dispatcher(
    settings: Settings, store: Store, transport: Transport, registry: Registry | None = None
) -> Dispatcher:
    """A dispatcher running every configured forwarder."""
    registry = registry or default_registry()
    delivery = settings.delivery
    targets = [
        Target(
            config=config,
            forwarder=registry.get(config.type)(config),
            breaker=CircuitBreaker(
                threshold=delivery.circuit_threshold,
                cooldown=timedelta(seconds=delivery.circuit_cooldown),
            ),
        )
        for config in settings.forwarders
    ]
    return Dispatcher(
        store, targets, transport, poll_interval=delivery.poll_interval, lease=delivery.lease
    )


def create_app(
    settings: Settings,
    store: Store | None = None,
    *,
    transport: AiohttpTransport | None = None,
    registry: Registry | None = None,
    dispatch: bool = True,
) -> web.Application:
    """The relay web application for `settings` (store and dispatcher start on startup)."""
    register_secrets(settings.secrets())
    store = store or open_store(settings.storage.url)
    app = web.Application(
        middlewares=[request_context, authenticate],
        client_max_size=settings.server.max_body_bytes,
    )
    app[SETTINGS], app[STORE], app[METRICS] = settings, store, Metrics()
    app[TRANSPORT] = transport or AiohttpTransport()
    dispatcher = build_dispatcher(settings, store, app[TRANSPORT], registry)
    dispatcher.listeners.append(app[METRICS].observe_delivery)
    app[DISPATCHER] = dispatcher
    app[AUTH] = Authenticator(store, static_tokens(settings))
    app[RECORDS] = RecordService(
        store,
        planner_for(settings.forwarders),
        strict_components=settings.server.strict_components,
        on_recorded=lambda event: _recorded(app, event),
    )
    app[DELIVERIES] = DeliveryService(store, dispatcher)
    routes = all_routes()
    register(app, routes)
    app[OPENAPI] = build_openapi(routes)
    app.cleanup_ctx.append(_store_lifecycle)
    if dispatch:
        app.cleanup_ctx.append(_dispatch_lifecycle)
    return app


def _recorded(app: web.Application, event: NewEvent) -> None:
    app[METRICS].events.labels(event.type, str(event.data.get("component"))).inc()
    app[DISPATCHER].wake()


async def _store_lifecycle(app: web.Application) -> AsyncIterator[None]:
    store = app[STORE]
    await store.open()
    await bootstrap_admin_token(store, app[SETTINGS], sys.stdout)
    log.info("store_opened", url=_safe_url(app[SETTINGS].storage.url))
    yield
    await store.close()
    log.info("store_closed")


async def _dispatch_lifecycle(app: web.Application) -> AsyncIterator[None]:
    dispatcher = app[DISPATCHER]
    await dispatcher.start()
    log.info("dispatcher_started", forwarders=sorted(dispatcher.targets))
    yield
    await dispatcher.stop(app[SETTINGS].delivery.shutdown_grace)
    await app[TRANSPORT].close()
    log.info("dispatcher_stopped")


def _safe_url(url: str) -> str:
    # A PostgreSQL URL may carry a password: keep the scheme and the host part only.
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}"
