"""Every `web.AppKey` and request key of the application, in one place."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from relay.auth import Authenticator, Principal
from relay.delivery.deliveries import DeliveryService
from relay.delivery.dispatch import Dispatcher
from relay.delivery.http import AiohttpTransport
from relay.feed.broker import Feed
from relay.insights.deployment_metrics import DeploymentMetrics
from relay.insights.service import InsightsService
from relay.metrics import Metrics
from relay.records.cloud66 import Cloud66Service
from relay.records.outputs import OutputService
from relay.records.releases import ReleaseService
from relay.records.retention import Pruner
from relay.records.retrace import RetraceService
from relay.records.scalingo import ScalingoService
from relay.records.service import RecordService
from relay.records.transitions import TransitionService
from relay.settings import Settings
from relay.store.base import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
# Set once the store is open (it may open after the server started: database down).
STORE_OPENED = web.AppKey("store_opened", asyncio.Event)
AUTH = web.AppKey("authenticator", Authenticator)
RECORDS = web.AppKey("records", RecordService)
OPENAPI = web.AppKey("openapi", dict[str, Any])
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
DELIVERIES = web.AppKey("deliveries", DeliveryService)
METRICS = web.AppKey("metrics", Metrics)
TRANSPORT = web.AppKey("transport", AiohttpTransport)
TRANSITIONS = web.AppKey("transitions", TransitionService)
OUTPUTS = web.AppKey("outputs", OutputService)
RETRACE = web.AppKey("retrace", RetraceService)
CLOUD66 = web.AppKey("cloud66", Cloud66Service)
SCALINGO = web.AppKey("scalingo", ScalingoService)
RELEASES = web.AppKey("releases", ReleaseService)
FEED = web.AppKey("feed", Feed)
PRUNER = web.AppKey("pruner", Pruner)
INSIGHTS = web.AppKey("insights", InsightsService)
DEPLOYMENT_METRICS = web.AppKey("deployment_metrics", DeploymentMetrics)

# Request-scoped values set by middlewares.
PRINCIPAL = web.RequestKey("principal", Principal)
REQUEST_ID = web.RequestKey("request_id", str)
