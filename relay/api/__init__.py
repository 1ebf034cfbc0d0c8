"""The HTTP API: one module per resource, thin handlers."""

from __future__ import annotations

from relay.api import (
    dashboard,
    deliveries,
    insights,
    lifecycle,
    ops,
    records,
    releases,
    retrace,
    sessions,
    stream,
)
from relay.api.routes import Route


def all_routes() -> list[Route]:
    """Every route of the API, in documentation order."""
    return [
        *records.routes(),
        *lifecycle.routes(),
        *retrace.routes(),
        *releases.routes(),
        *deliveries.routes(),
        *dashboard.routes(),
        *stream.routes(),
        *insights.routes(),
        *ops.routes(),
        *sessions.routes(),
    ]
