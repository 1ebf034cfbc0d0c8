"""Handlers of a deployment's lifecycle: PATCH (status), DELETE (Cloud66 cancel), output log."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from relay.api.keys import OUTPUTS, TRANSITIONS
from relay.api.parsing import FORM_TYPE, decode_json_object, read_body, request_fields
from relay.api.records import json_answer, principal_of
from relay.api.routes import Route
from relay.errors import MalformedBody, UnsupportedMediaType, ValidationFailed
from relay.models import Deployment
from relay.records.transitions import TransitionIn

BASE = "/components/{slug}/deployments/{id}"
# Read as the text itself: no type at all, and what `curl --data-binary` sends by default.
_RAW_TYPES = frozenset({"application/octet-stream", FORM_TYPE})


class CancelAnswer(BaseModel):
    """The answer of a Cloud66-style cancel."""

    ok: bool = True
    message: str = "Deployment cancelled"


class OutputIn(BaseModel):
    """JSON body of an output append (or send the text itself as text/plain)."""

    output: str = Field(description="Text to append; each line is one line of the log.")


class OutputAnswer(BaseModel):
    """Size of the output log after an append."""

    ok: bool = True
    appended: int = Field(description="Lines appended by this request.")
    lines: int = Field(description="Lines in the whole log.")
    bytes: int = Field(description="Size of the whole log (UTF-8, newlines included).")


async def patch_deployment(request: web.Request) -> web.Response:
    """Move a deployment along its lifecycle; 409 (with the current status and the
    allowed next ones) when the move is not allowed."""
    fields = await request_fields(request)
    record, warnings = await request.app[TRANSITIONS].patch(
        request.match_info["slug"], request.match_info["id"], fields, principal_of(request)
    )
    body = record.model_dump(mode="json")
    if warnings:
        body["warnings"] = warnings
    return json_answer(body)


async def cancel_deployment(request: web.Request) -> web.Response:
    """Cancel a deployment in progress (status `aborted`); 409 when it already ended."""
    await request.app[TRANSITIONS].cancel(
        request.match_info["slug"], request.match_info["id"], principal_of(request)
    )
    return json_answer(CancelAnswer().model_dump())


def _json_output(body: bytes) -> str | None:
    """The `output` of a body that is a JSON object holding one, else None."""
    if not body.lstrip().startswith(b"{"):
        return None
    try:
        value = decode_json_object(body).get("output")
    except MalformedBody:
        return None
    return value if isinstance(value, str) else None


async def _output_text(request: web.Request) -> str:
    body = await read_body(request)
    ctype = request.content_type
    if ctype == "application/json" or ctype.endswith("+json"):
        value = decode_json_object(body).get("output")
        if not isinstance(value, str):
            raise ValidationFailed(
                "the JSON body needs an `output` string",
                details=[{"field": "output", "message": "a string is required"}],
            )
        return value
    if ctype.startswith("text/") or ctype in _RAW_TYPES or not body:
        # As everywhere in the API, a body that is a JSON object is JSON whatever its
        # declared type (`curl -d` declares a form), unless it says text/plain.
        if not ctype.startswith("text/") and (wrapped := _json_output(body)) is not None:
            return wrapped
        # A log is what it is: undecodable bytes are shown, not refused.
        return body.decode(request.charset or "utf-8", errors="replace")
    raise UnsupportedMediaType(
        f"unsupported content type {ctype!r}: send text/plain or application/json "
        '({"output": "..."})'
    )


async def append_output(request: web.Request) -> web.Response:
    """Append text to the deployment's output log (text/plain, or JSON {"output": ...})."""
    text = await _output_text(request)
    totals = await request.app[OUTPUTS].append(
        request.match_info["slug"], request.match_info["id"], text, principal_of(request)
    )
    answer = OutputAnswer(appended=totals.appended, lines=totals.lines, bytes=totals.bytes)
    return json_answer(answer.model_dump())


async def read_output(request: web.Request) -> web.Response:
    """The whole output log as text/plain."""
    text = await request.app[OUTPUTS].read(
        request.match_info["slug"], request.match_info["id"], principal_of(request)
    )
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


def routes() -> list[Route]:
    """Routes of this module."""
    tag = "lifecycle"
    return [
        Route(
            "PATCH",
            BASE,
            patch_deployment,
            "Change a deployment's status",
            tag,
            body=TransitionIn,
            response=Deployment,
        ),
        Route("DELETE", BASE, cancel_deployment, "Cancel a deployment", tag, response=CancelAnswer),
        Route(
            "POST",
            BASE + "/output",
            append_output,
            "Append to a deployment's output log",
            tag,
            body=OutputIn,
            response=OutputAnswer,
        ),
        Route(
            "GET",
            BASE + "/output",
            read_output,
            "Read a deployment's output log",
            tag,
            content_type="text/plain",
        ),
    ]
