"""The OpenAPI 3.1 document, generated from the route table and the pydantic models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from relay import __version__
from relay.api.routes import Route
from relay.models import ErrorAnswer

_REF = "#/components/schemas/{model}"
_ERRORS = {
    400: "Malformed request: a request head relay cannot read, or a malformed body",
    401: "Missing, unknown or revoked token",
    403: "Token lacks the scope or the component",
    404: "Not found",
    409: "Conflict (e.g. an Idempotency-Key reused with another body)",
    413: "Body too large",
    415: "Unsupported content type",
    422: "Validation error",
    426: "Not a WebSocket upgrade",
    429: "Over the token's rate limit or the client's connection cap (see Retry-After)",
    503: "Storage unavailable",
}
_OTHER = {"304": "Not modified (If-None-Match names the current ETag)"}
# OpenAPI before 3.2 has the `schema` of an event stream describe each event.
_SSE_EVENT = {
    "type": "object",
    "properties": {
        "event": {"type": "string"},
        "data": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
}


def _models(routes: list[Route]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    seen: dict[str, tuple[type[BaseModel], JsonSchemaMode]] = {
        "ErrorAnswer": (ErrorAnswer, "serialization")
    }
    for r in routes:
        if r.body is not None:
            seen[r.body.__name__] = (r.body, "validation")
        if r.response is not None:
            seen[r.response.__name__] = (r.response, "serialization")
    return list(seen.values())


def _parameters(route: Route) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    if route.query is not None:
        schema = route.query.model_json_schema(ref_template=_REF)
        for name, prop in schema.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": False, "schema": prop})
    if route.idempotent:
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": 255},
            }
        )
    return params


def error_statuses(route: Route) -> list[int]:
    """The error statuses `route` can answer: its own list, else derived from what it
    reads (a body, a query, path parameters) and whether it needs a token."""
    # Any request: a head the HTTP parser refuses (400); the connection cap and the rate
    # limit, when configured (429).
    every = {400, 429}
    if route.errors is not None:
        return sorted(route.errors | every)
    codes = set(every)
    params = re.findall(r"{(\w+)}", route.path)
    if route.body is not None:
        codes |= {400, 413, 415, 422}
    if route.query is not None or params:
        codes.add(422)
    if route.status == 101:
        codes.add(426)
    if not route.public:
        codes |= {401, 403, 503}
        # A listing of an unknown component is empty; one named thing may not exist.
        if params and not (route.method == "GET" and route.query is not None):
            codes.add(404)
        conflicts = route.conflicts
        if conflicts is None:
            conflicts = route.method in ("PATCH", "DELETE")
        if conflicts or route.idempotent:
            codes.add(409)
    return sorted(codes)


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": route.summary, "tags": [route.tag]}
    if doc := (route.handler.__doc__ or "").strip():
        op["description"] = doc
    if params := _parameters(route):
        op["parameters"] = params
    if route.body is not None:
        ref = {"$ref": _REF.format(model=route.body.__name__)}
        op["requestBody"] = {
            "required": False,
            "content": {
                "application/json": {"schema": ref},
                "application/x-www-form-urlencoded": {"schema": ref},
            },
        }
    ok: dict[str, Any] = {"description": "Success"}
    if route.response is not None:
        schema: dict[str, Any] = {"$ref": _REF.format(model=route.response.__name__)}
        if route.response_is_list:
            schema = {"type": "array", "items": schema}
        ok["content"] = {route.content_type: {"schema": schema}}
    elif route.content_type == "text/event-stream":
        ok["content"] = {route.content_type: {"schema": _SSE_EVENT}}
    elif route.content_type != "application/json":
        ok["content"] = {route.content_type: {"schema": {"type": "string"}}}
    error = {"application/json": {"schema": {"$ref": _REF.format(model="ErrorAnswer")}}}
    op["responses"] = {str(route.status): ok}
    if route.method == "PUT" and route.status == 201:
        # A PUT creates (201) or finds the resource already there (200), same body.
        op["responses"]["200"] = ok
    if route.status == 101:
        ok["description"] = "Switching Protocols: the WebSocket is open"
    op["responses"].update(
        {str(c): {"description": _ERRORS[c], "content": error} for c in error_statuses(route)}
    )
    if route.public:
        op["security"] = []
        # A public route that checks access itself says what more it answers.
        for code in route.answers:
            known = _ERRORS.get(int(code))
            op["responses"][code] = {"description": known or _OTHER[code]}
            if known:
                op["responses"][code]["content"] = error
    return op


def build_openapi(routes: list[Route]) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document for `routes`."""
    _, defs = models_json_schema(_models(routes), ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "relay",
            "version": __version__,
            "description": "Deployment events in, durable fan-out to observability tools.",
        },
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "Authorization"},
                "accessToken": {"type": "apiKey", "in": "query", "name": "access_token"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}, {"accessToken": []}],
    }
