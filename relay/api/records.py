"""Handlers of deployments and builds (the ReleaseBits core)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from relay.api.forwarded import base_url
from relay.api.keys import PRINCIPAL, RECORDS, SETTINGS
from relay.api.parsing import request_fields, restore_plus
from relay.api.routes import Handler, Route
from relay.auth import Principal
from relay.errors import ValidationFailed
from relay.logging import render_json
from relay.models import (
    BuildIn,
    Component,
    CreatedAnswer,
    Deployment,
    DeploymentIn,
    Kind,
    Status,
    UtcDatetime,
)
from relay.records.service import parse_query
from relay.store.base import Cursor, ListQuery
from relay.timeutil import format_db, parse_db

MAX_IDEMPOTENCY_KEY = 255


class ListParams(BaseModel):
    """Query parameters of a listing."""

    stage: str | None = None
    result: str | None = None
    status: Status | None = None
    since: UtcDatetime | None = Field(default=None, description="Occurred at or after.")
    until: UtcDatetime | None = Field(default=None, description="Occurred before.")
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, description="From the previous page's Link header.")


def principal_of(request: web.Request) -> Principal:
    """The authenticated caller (set by the auth middleware)."""
    return request[PRINCIPAL]


def json_answer(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response from plain data or pydantic models."""
    text = render_json(data)
    return web.Response(text=text, status=status, content_type="application/json", headers=headers)


def deployment_location(record: Deployment) -> dict[str, str]:
    """The `Location` header of a deployment a dialect recorded: its relay URL."""
    return {"Location": f"/components/{record.component}/deployments/{record.id}"}


def encode_cursor(cursor: Cursor) -> str:
    """An opaque, URL-safe page cursor."""
    raw = json.dumps([format_db(cursor.occurred_at), cursor.seq]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """Read a cursor back; ValidationFailed when it was not made by `encode_cursor`."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        occurred, seq = json.loads(raw)
        return Cursor(occurred_at=parse_db(occurred), seq=int(seq))
    except (binascii.Error, ValueError, TypeError, RecursionError):
        raise ValidationFailed(
            "invalid cursor", details=[{"field": "cursor", "message": "not a cursor relay made"}]
        ) from None


async def create_record(request: web.Request, kind: Kind) -> web.Response:
    """Record a deployment or build sent as JSON, a form body or a query string."""
    idempotency_key = request.headers.get("Idempotency-Key")
    if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
        raise ValidationFailed(
            "invalid Idempotency-Key",
            details=[
                {
                    "field": "Idempotency-Key",
                    "message": f"use 1-{MAX_IDEMPOTENCY_KEY} characters",
                }
            ],
        )
    fields = await request_fields(request)
    result = await request.app[RECORDS].record(
        kind,
        request.match_info["slug"],
        fields,
        principal_of(request),
        idempotency_key,
    )
    answer = result.answer
    headers = {"Location": answer.location} if answer.location else {}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_answer(answer.body, status=answer.status, headers=headers)


async def list_records(request: web.Request, kind: Kind) -> web.Response:
    """A page of deployments or builds, newest first, next page in `Link`."""
    raw = dict(request.query)
    for name in ("since", "until"):  # an unencoded `+02:00` arrives as ` 02:00`
        if name in raw:
            raw[name] = restore_plus(raw[name])
    params = parse_query(ListParams, raw)
    query = ListQuery(
        kind=kind,
        component=request.match_info["slug"],
        stage=params.stage,
        result=params.result,
        status=params.status.value if params.status else None,
        since=params.since,
        until=params.until,
        limit=params.limit,
        after=decode_cursor(params.cursor) if params.cursor else None,
    )
    page = await request.app[RECORDS].page(query, principal_of(request))
    headers = {}
    if page.next_cursor is not None:
        headers["Link"] = f'<{next_url(request, encode_cursor(page.next_cursor))}>; rel="next"'
    body = [d.model_dump(mode="json", exclude={"deliveries"}) for d in page.items]
    return json_answer(body, headers=headers)


def next_url(request: web.Request, cursor: str) -> str:
    """The URL of the next page: this request's, with `cursor` (never `access_token`)."""
    query = {k: v for k, v in request.query.items() if k not in ("cursor", "access_token")}
    query["cursor"] = cursor
    # Behind a trusted proxy, on the host and scheme the client used.
    return f"{base_url(request, request.app[SETTINGS].server)}{request.rel_url.with_query(query)}"


async def get_record(request: web.Request, kind: Kind) -> web.Response:
    """One deployment or build with its deliveries summary."""
    record = await request.app[RECORDS].get(
        kind, request.match_info["slug"], request.match_info["id"], principal_of(request)
    )
    return json_answer(record.model_dump(mode="json"))


async def list_components(request: web.Request) -> web.Response:
    """Components with their latest deployment per stage."""
    rows = await request.app[RECORDS].components(principal_of(request))
    body = [
        Component(slug=r.slug, created_at=r.created_at, latest_deployments=r.latest).model_dump(
            mode="json", exclude={"latest_deployments": {"__all__": {"deliveries"}}}
        )
        for r in rows
    ]
    return json_answer(body)


async def put_component(request: web.Request) -> web.Response:
    """Register a component before its first event (admin; needed with strict_components)."""
    slug = request.match_info["slug"]
    created = await request.app[RECORDS].register_component(slug, principal_of(request))
    return json_answer({"slug": slug, "created": created}, status=201 if created else 200)


def _bind(handler: Callable[[web.Request, Kind], Awaitable[web.Response]], kind: Kind) -> Handler:
    async def bound(request: web.Request) -> web.Response:
        return await handler(request, kind)

    bound.__doc__ = handler.__doc__
    return bound


def routes() -> list[Route]:
    """Routes of this module."""
    out = [
        Route(
            "GET",
            "/components",
            list_components,
            "List components",
            "components",
            response=Component,
            response_is_list=True,
        ),
        Route(
            "PUT",
            "/components/{slug}",
            put_component,
            "Register a component",
            "components",
            status=201,
        ),
    ]
    collections: tuple[tuple[Kind, str, type[BuildIn]], ...] = (
        ("deployment", "deployments", DeploymentIn),
        ("build", "builds", BuildIn),
    )
    for kind, plural, model in collections:
        base = f"/components/{{slug}}/{plural}"
        out += [
            Route(
                "POST",
                base,
                _bind(create_record, kind),
                f"Record a {kind}",
                plural,
                body=model,
                response=CreatedAnswer,
                status=201,
                idempotent=True,
                aliases=(base + "/",),
            ),
            Route(
                "GET",
                base,
                _bind(list_records, kind),
                f"List {plural}, newest first",
                plural,
                query=ListParams,
                response=Deployment,
                response_is_list=True,
                aliases=(base + "/",),
            ),
            Route(
                "GET",
                base + "/{id}",
                _bind(get_record, kind),
                f"Get one {kind}",
                plural,
                response=Deployment,
            ),
        ]
    return out
