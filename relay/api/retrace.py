"""Handlers of the Stackify Retrace dialect: start, complete, cancel a deployment."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from relay.api.keys import RETRACE
from relay.api.parsing import decode_json_object, read_body, request_fields
from relay.api.records import deployment_location, json_answer, principal_of
from relay.api.routes import Route
from relay.models import Deployment
from relay.records.retrace import RetraceIn

BASE = "/api/v1/deployments"


async def retrace_fields(request: web.Request) -> dict[str, Any]:
    """The fields of a Retrace call. Windows PowerShell 5.1, which runs Stackify's
    documented stackify-deploy.ps1, sends a string body as ISO-8859-1 when the content
    type names no charset: such a JSON body that is not UTF-8 is read as ISO-8859-1
    ("Funky Fünke" arrives as one byte 0xFC), not refused."""
    if request.content_type == "application/json" and request.charset is None:
        body = await read_body(request)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            # UTF-16 and UTF-32 bodies (always with NUL bytes) are json's to detect.
            if b"\x00" not in body:
                return decode_json_object(body.decode("latin-1").encode("utf-8"))
    return await request_fields(request)


async def start(request: web.Request) -> web.Response:
    """Announce a deployment (Retrace `start`): recorded in status `building`; 409 when
    the same AppName, EnvironmentName and Version is already in progress."""
    record = await request.app[RETRACE].start(await retrace_fields(request), principal_of(request))
    return json_answer(
        record.model_dump(mode="json"), status=201, headers=deployment_location(record)
    )


async def complete(request: web.Request) -> web.Response:
    """Finish the started deployment as `success` (Retrace `complete`); 409 when it was
    never started or already ended."""
    record = await request.app[RETRACE].complete(
        await retrace_fields(request), principal_of(request)
    )
    return json_answer(record.model_dump(mode="json"))


async def cancel(request: web.Request) -> web.Response:
    """Cancel the started deployment (Retrace `cancel`, status `aborted`); 409 when it was
    never started or already ended."""
    record = await request.app[RETRACE].cancel(await retrace_fields(request), principal_of(request))
    return json_answer(record.model_dump(mode="json"))


def routes() -> list[Route]:
    """Routes of this module."""
    out = []
    for name, handler, summary, status in (
        ("start", start, "Retrace: start a deployment", 201),
        ("complete", complete, "Retrace: complete a deployment", 200),
        ("cancel", cancel, "Retrace: cancel a deployment", 200),
    ):
        out.append(
            Route(
                "POST",
                f"{BASE}/{name}",
                handler,
                summary,
                "retrace",
                body=RetraceIn,
                response=Deployment,
                status=status,
                # 404: an unknown AppName when strict_components is on.
                errors=frozenset({401, 403, 404, 409, 413, 415, 422, 503}),
            )
        )
    return out
