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
    "400": "Malformed body",
    "401": "Missing, unknown or revoked token",
    "403": "Token lacks the scope or the component",
    "404": "Not found",
    "409": "Conflict (e.g. an Idempotency-Key reused with another body)",
    "413": "Body too large",
    "415": "Unsupported content type",
    "422": "Validation error",
    "429": "Over the token's rate limit or the client's connection cap (see Retry-After)",
    "503": "Storage unavailable",
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
    if route.method == "POST":
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": 255},
            }
        )
    return params


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
        op["responses"]["426"] = {"description": "Not a WebSocket upgrade", "content": error}
    if not route.public:
        op["responses"].update(
            {code: {"description": text, "content": error} for code, text in _ERRORS.items()}
        )
    else:
        op["security"] = []
        for code in route.answers:
            text = _ERRORS.get(code) or _OTHER[code]
            op["responses"][code] = {"description": text}
            if code in _ERRORS:
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
