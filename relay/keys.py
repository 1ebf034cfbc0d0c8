"""Every `web.AppKey` and request key of the application, in one place."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from relay.auth import Authenticator, Principal
from relay.deliveries import DeliveryService
from relay.dispatch import Dispatcher
from relay.http import AiohttpTransport
from relay.metrics import Metrics
from relay.service import RecordService
from relay.settings import Settings
from relay.store.base import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
AUTH = web.AppKey("authenticator", Authenticator)
RECORDS = web.AppKey("records", RecordService)
OPENAPI = web.AppKey("openapi", dict[str, Any])
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
DELIVERIES = web.AppKey("deliveries", DeliveryService)
METRICS = web.AppKey("metrics", Metrics)
TRANSPORT = web.AppKey("transport", AiohttpTransport)

# Request-scoped values set by middlewares.
PRINCIPAL = web.RequestKey("principal", Principal)
REQUEST_ID = web.RequestKey("request_id", str)
