"""Turn a request (JSON, form body or query string) into a dict of fields."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from relay.errors import BodyTooLarge, MalformedBody, UnsupportedMediaType
from relay.keys import SETTINGS

_BRACKET = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])+)$")
# A `+` in a query string decodes to a space: restore UTC offsets that lost it.
_LOST_PLUS = re.compile(r"^(\d{4}-\d\d-\d\dT[\d:.]+) (\d\d(?::?\d\d)?)$")
NOT_FIELDS = frozenset({"access_token"})
FORM_TYPE = "application/x-www-form-urlencoded"
MULTIPART_TYPE = "multipart/form-data"


def nest_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Fold `meta_data[key]=value` bracket notation into nested dicts (last value wins)."""
    out: dict[str, Any] = {}
    for raw_key, value in pairs:
        if raw_key in NOT_FIELDS:
            continue
        match = _BRACKET.match(raw_key)
        if match is None:
            out[raw_key] = restore_plus(value)
            continue
        keys = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        target = out
        for key in keys[:-1]:
            child = target.get(key)
            if not isinstance(child, dict):
                child = target[key] = {}
            target = child
        target[keys[-1]] = value
    return out


def restore_plus(value: str) -> str:
    """`2018-05-27T15:15:30 02:00` (a `+` decoded to a space) back to `...+02:00`."""
    match = _LOST_PLUS.match(value)
    return f"{match.group(1)}+{match.group(2)}" if match else value


def _looks_like_json(body: bytes) -> bool:
    return body.lstrip()[:1] in (b"{", b"[")


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON (RFC 8259) does not, and neither do
    # the clients that read the record back.
    raise ValueError(f"{name} is not a JSON value")


def decode_json_object(body: bytes) -> dict[str, Any]:
    """Parse a JSON object body; MalformedBody for anything else."""
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise MalformedBody("the body is not valid UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise MalformedBody(f"the body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise MalformedBody("the JSON body must be an object")
    return value


async def read_body(request: web.Request) -> bytes:
    """The raw body, with the configured size limit turned into BodyTooLarge."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].server.max_body_bytes
        raise BodyTooLarge(f"the body is larger than the limit of {limit} bytes") from None


async def _form_fields(request: web.Request) -> dict[str, Any]:
    try:
        form: MultiDictProxy[Any] = await request.post()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].server.max_body_bytes
        raise BodyTooLarge(f"the body is larger than the limit of {limit} bytes") from None
    except (ValueError, UnicodeDecodeError, LookupError) as exc:
        raise MalformedBody(f"the form body cannot be decoded: {exc}") from None
    for value in form.values():
        if isinstance(value, web.FileField):
            value.file.close()  # uploaded files are not fields of a deployment
    return nest_pairs((k, v) for k, v in form.items() if isinstance(v, str))


async def request_fields(request: web.Request) -> dict[str, Any]:
    """Fields of a POST: a JSON object body whatever its declared type, else a form body,
    else (no body) the query string."""
    ctype = request.content_type
    if ctype == MULTIPART_TYPE and request.body_exists:
        # A multipart body is read by its parser: it cannot be read as bytes first.
        fields = await _form_fields(request)
        return fields or nest_pairs(request.query.items())
    body = await read_body(request)
    if not body.strip():
        return nest_pairs(request.query.items())
    if _looks_like_json(body) or ctype == "application/json" or ctype.endswith("+json"):
        return decode_json_object(body)
    if ctype == FORM_TYPE:
        return await _form_fields(request)
    raise UnsupportedMediaType(
        f"unsupported content type {ctype!r}: send application/json or "
        "application/x-www-form-urlencoded (or multipart/form-data)"
    )
