"""create_app(settings): wiring only."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import TextIO

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from relay.api import all_routes, ui
from relay.api.keys import (
    AUTH,
    CLOUD66,
    DELIVERIES,
    DEPLOYMENT_METRICS,
    DISPATCHER,
    FEED,
    INSIGHTS,
    METRICS,
    OPENAPI,
    OUTPUTS,
    PRUNER,
    RECORDS,
    RELEASES,
    RETRACE,
    SCALINGO,
    SETTINGS,
    STORE,
    STORE_OPENED,
    TRANSITIONS,
    TRANSPORT,
)
from relay.api.limits import ConnectionCounter, RateLimiter
from relay.api.middleware import authenticate, client_cap, rate_limit, request_context
from relay.api.openapi import build_openapi
from relay.api.routes import register
from relay.auth import Authenticator, generate_token, hash_token, new_token_record
from relay.delivery.deliveries import DeliveryService
from relay.delivery.http import AiohttpTransport
from relay.delivery.plugins import Registry
from relay.errors import Conflict
from relay.feed.broker import Feed
from relay.insights.deployment_metrics import DeploymentMetrics, MetricsConfig
from relay.insights.service import BadgeConfig, InsightsService
from relay.logging import register_secrets
from relay.metrics import Metrics
from relay.records.cloud66 import Cloud66Service
from relay.records.outputs import OutputService
from relay.records.releases import ReleaseService
from relay.records.retention import Pruner
from relay.records.retrace import RetraceService
from relay.records.scalingo import ScalingoService
from relay.records.service import RecordService, planner_for
from relay.records.transitions import TransitionService
from relay.settings import Settings
from relay.store import Store, open_store
from relay.store.base import NewEvent, TokenRecord
from relay.store.opening import open_with_retry
from relay.tasks import cancel_and_wait
from relay.worker import build_dispatcher

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
    try:
        await store.add_token(new_token_record("admin", token, ["admin"], ["*"]))
    except Conflict:
        return None  # another instance on the same database started first and made it
    register_secrets([token])
    log.warning("admin_token_created", token_name="admin", token_hash=hash_token(token)[:12])
    out.write(
        "\nNo API token existed, so relay created an admin token. It is shown only this once;\n"
        "keep it somewhere safe (`relay tokens create` makes more):\n\n"
        f"    {token}\n\n"
    )
    out.flush()
    return token


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
    store = store or open_store(
        settings.storage.url,
        pool_min=settings.storage.pool_min,
        pool_max=settings.storage.pool_max,
    )
    app = web.Application(
        middlewares=middlewares(settings), client_max_size=settings.server.max_body_bytes
    )
    app[SETTINGS], app[STORE], app[METRICS] = settings, store, Metrics()
    app[STORE_OPENED] = asyncio.Event()
    app[TRANSPORT] = transport or AiohttpTransport(allow_networks=settings.security.networks())
    dispatcher = build_dispatcher(settings, store, app[TRANSPORT], registry)
    dispatcher.listeners.append(app[METRICS].observe_delivery)
    app[DISPATCHER] = dispatcher
    app[FEED] = build_feed(settings, store)
    dispatcher.listeners.append(app[FEED].wake)
    app[AUTH] = Authenticator(store, static_tokens(settings))
    app[RECORDS] = RecordService(
        store,
        planner_for(settings.forwarders),
        strict_components=settings.server.strict_components,
        on_recorded=lambda event: _recorded(app, event),
    )
    app[DELIVERIES] = DeliveryService(store, dispatcher)
    add_insights(app, settings, store)
    add_lifecycle_services(app)
    app[OUTPUTS].on_output.append(app[FEED].wake)  # output lines are durable rows: read them
    routes = all_routes()
    register(app, routes)
    ui.register(app)
    app[OPENAPI] = build_openapi(routes)
    app.cleanup_ctx.append(_store_lifecycle)
    if dispatch:
        app.cleanup_ctx.append(_dispatch_lifecycle)
    app.cleanup_ctx.append(_feed_lifecycle)
    app[PRUNER] = Pruner.from_settings(store, settings.storage.retention)
    app.cleanup_ctx.append(_retention_lifecycle)  # after the store's: stops before it closes
    app.on_shutdown.append(_close_streams)
    return app


def middlewares(settings: Settings) -> list[Middleware]:
    """Request context and authentication, and the abuse limits only when configured:
    every middleware is a coroutine layer on every request."""
    limits = settings.limits
    out: list[Middleware] = [request_context]
    if limits.max_connections_per_client:
        out.append(client_cap(ConnectionCounter(limits.max_connections_per_client)))
    out.append(authenticate)
    if limits.requests_per_second:
        out.append(rate_limit(RateLimiter(limits.requests_per_second, limits.burst)))
    return out


def add_lifecycle_services(app: web.Application) -> None:
    """Status changes, the dialects, output logs and releases, on top of the record service.
    `app[OUTPUTS].on_output` is where watchers of output lines subscribe."""
    app[TRANSITIONS] = TransitionService(app[RECORDS])
    app[OUTPUTS] = OutputService(app[RECORDS])
    app[RETRACE] = RetraceService(app[RECORDS], app[TRANSITIONS])
    app[RELEASES] = ReleaseService(app[RECORDS])
    app[CLOUD66] = Cloud66Service(app[RECORDS], app[TRANSITIONS])
    app[SCALINGO] = ScalingoService(app[RECORDS], app[OUTPUTS])


def badge_config(settings: Settings) -> BadgeConfig:
    """The `[badges]` settings as the insights layer takes them."""
    badges = settings.badges
    secret = badges.secret.get_secret_value() if badges.secret is not None else None
    return BadgeConfig(public=tuple(badges.public), secret=secret, max_age=badges.max_age)


def add_insights(app: web.Application, settings: Settings, store: Store) -> None:
    """Badges, the DORA keys and the store-derived deployment series of /metrics."""
    app[INSIGHTS] = InsightsService(store, badge_config(settings))
    m = settings.metrics
    config = MetricsConfig(
        max_series=m.max_series,
        dora_window=timedelta(seconds=m.dora_window),
        cache_seconds=m.cache_seconds,
    )
    app[DEPLOYMENT_METRICS] = DeploymentMetrics(store, config)
    app[METRICS].registry.register(app[DEPLOYMENT_METRICS])


def build_feed(settings: Settings, store: Store) -> Feed:
    """The live feed broker with the `[feed]` settings."""
    feed = settings.feed
    return Feed(
        store,
        ping_interval=feed.ping_interval,
        poll_interval=feed.poll_interval,
        max_subscribers=feed.max_subscribers,
        max_per_token=feed.max_subscribers_per_token,
        queue_size=feed.queue_size,
        slow_consumer=feed.slow_consumer,
    )


def _recorded(app: web.Application, event: NewEvent) -> None:
    app[METRICS].events.labels(event.type, str(event.data.get("component") or "")).inc()
    app[DISPATCHER].wake()
    app[FEED].wake()


async def _store_lifecycle(app: web.Application) -> AsyncIterator[None]:
    # A database that cannot be reached yet does not stop the start: the server answers
    # /healthz, and /readyz says 503, while the store keeps trying in the background.
    tried = asyncio.Event()
    opening = asyncio.create_task(_open_store(app, tried.set), name="relay-store-open")
    first = asyncio.create_task(tried.wait())
    await asyncio.wait({opening, first}, return_when=asyncio.FIRST_COMPLETED)
    first.cancel()
    if opening.done():
        opening.result()  # a store that cannot be used at all fails the start here
    yield
    await cancel_and_wait(opening)
    await app[STORE].close()
    log.info("store_closed")


async def _open_store(app: web.Application, on_first_failure: Callable[[], None]) -> None:
    store, where = app[STORE], _safe_url(app[SETTINGS].storage.url)
    attempts = await open_with_retry(store, where, on_first_failure=on_first_failure)
    # Other instances' commits (PostgreSQL NOTIFY) wake this one's dispatcher and feed.
    store.add_due_listener(app[DISPATCHER].wake)
    store.add_due_listener(app[FEED].wake)
    await bootstrap_admin_token(store, app[SETTINGS], sys.stdout)
    log.info("store_opened", url=where, attempts=attempts)
    app[STORE_OPENED].set()


async def _dispatch_lifecycle(app: web.Application) -> AsyncIterator[None]:
    dispatcher = app[DISPATCHER]
    starting: asyncio.Task[None] | None = None
    if app[STORE_OPENED].is_set():
        await _start_dispatcher(app)
    else:  # the store opens later: start delivering then
        starting = asyncio.create_task(_start_dispatcher(app), name="relay-dispatch-start")
    yield
    if starting is not None and not starting.done():
        await cancel_and_wait(starting)
    elif starting is None or starting.exception() is None:
        await dispatcher.stop(app[SETTINGS].delivery.shutdown_grace)
        log.info("dispatcher_stopped")
    await app[TRANSPORT].close()


async def _start_dispatcher(app: web.Application) -> None:
    await app[STORE_OPENED].wait()
    dispatcher = app[DISPATCHER]
    await dispatcher.start()
    log.info("dispatcher_started", forwarders=sorted(dispatcher.targets))


async def _feed_lifecycle(app: web.Application) -> AsyncIterator[None]:
    await app[FEED].start()
    yield
    await app[FEED].stop()


async def _retention_lifecycle(app: web.Application) -> AsyncIterator[None]:
    app[PRUNER].start(ready=app[STORE_OPENED])
    yield
    await app[PRUNER].stop()


async def _close_streams(app: web.Application) -> None:
    # Open streams would hold a graceful shutdown for its whole timeout: end them first.
    app[FEED].close_all("shutdown")


def _safe_url(url: str) -> str:
    # A PostgreSQL URL may carry a password: keep the scheme and the host part only.
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}"
