"""The HTTP API: one module per resource, thin handlers."""

from __future__ import annotations

from relay.api import (
    cloud66,
    dashboard,
    deliveries,
    insights,
    lifecycle,
    ops,
    records,
    releases,
    retrace,
    scalingo,
    scalingo_stream,
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
        *cloud66.routes(),
        *scalingo.routes(),
        *scalingo_stream.routes(),
        *releases.routes(),
        *deliveries.routes(),
        *dashboard.routes(),
        *stream.routes(),
        *insights.routes(),
        *ops.routes(),
        *sessions.routes(),
    ]
