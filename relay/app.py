"""create_app(settings): wiring only."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import TextIO

import structlog
from aiohttp import web

from relay.api import all_routes
from relay.api.middleware import authenticate, request_context
from relay.api.routes import register
from relay.auth import Authenticator, generate_token, hash_token, new_token_record
from relay.keys import AUTH, OPENAPI, RECORDS, SETTINGS, STORE
from relay.logging import register_secrets
from relay.openapi import build_openapi
from relay.service import RecordService
from relay.settings import Settings
from relay.store import Store, open_store
from relay.store.base import TokenRecord

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


def create_app(settings: Settings, store: Store | None = None) -> web.Application:
    """The relay web application for `settings` (its store opens on startup)."""
    register_secrets(settings.secrets())
    store = store or open_store(settings.storage.url)
    app = web.Application(
        middlewares=[request_context, authenticate],
        client_max_size=settings.server.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[STORE] = store
    app[AUTH] = Authenticator(store, static_tokens(settings))
    app[RECORDS] = RecordService(store, strict_components=settings.server.strict_components)
    routes = all_routes()
    register(app, routes)
    app[OPENAPI] = build_openapi(routes)
    app.cleanup_ctx.append(_store_lifecycle)
    return app


async def _store_lifecycle(app: web.Application) -> AsyncIterator[None]:
    store = app[STORE]
    await store.open()
    await bootstrap_admin_token(store, app[SETTINGS], sys.stdout)
    log.info("store_opened", url=_safe_url(app[SETTINGS].storage.url))
    yield
    await store.close()
    log.info("store_closed")


def _safe_url(url: str) -> str:
    # A PostgreSQL URL may carry a password: keep the scheme and the host part only.
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}"
