"""Turn a request (JSON, form body or query string) into a dict of fields."""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.compression_utils import HAS_BROTLI, HAS_ZSTD
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDictProxy

from relay.api.keys import SETTINGS
from relay.errors import (
    BodyTooLarge,
    MalformedBody,
    RequestTimeout,
    UnsupportedContentEncoding,
    UnsupportedMediaType,
)

_BRACKET = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])+)$")
# A `+` in a query string decodes to a space: restore UTC offsets that lost it.
_LOST_PLUS = re.compile(r"^(\d{4}-\d\d-\d\dT[\d:.]+) (\d\d(?::?\d\d)?)$")
NOT_FIELDS = frozenset({"access_token"})
FORM_TYPE = "application/x-www-form-urlencoded"
MULTIPART_TYPE = "multipart/form-data"
MAX_INT_DIGITS = 20
# Deeper bodies are refused before anything walks them recursively (the request
# fingerprint, pydantic, the JSON encoder: Python's recursion limit is 1,000);
# meta_data has its own, lower bound, answered 422 naming it.
MAX_DEPTH = 500
# What aiohttp decompresses (one coding, as the whole header value); anything else
# would be read as if it were plain.
CONTENT_CODINGS = frozenset(
    {"", "identity", "gzip", "deflate"}
    | ({"br"} if HAS_BROTLI else set())
    | ({"zstd"} if HAS_ZSTD else set())
)


def nest_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Fold `meta_data[key]=value` bracket notation into nested dicts (last value wins);
    MalformedBody for a NUL character in a name or value."""
    out: dict[str, Any] = {}
    for raw_key, value in pairs:
        if raw_key in NOT_FIELDS:
            continue
        match = _BRACKET.match(raw_key)
        if match is None:
            out[raw_key] = restore_plus(value)
            continue
        keys = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        if len(keys) > MAX_DEPTH:
            raise MalformedBody(f"a field name is nested deeper than {MAX_DEPTH} levels")
        target = out
        for key in keys[:-1]:
            child = target.get(key)
            if not isinstance(child, dict):
                child = target[key] = {}
            target = child
        target[keys[-1]] = value
    check_text(out)
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


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: a double cannot hold it, Python would say inf
        raise ValueError(f"the number {text[:20]}... is too large")
    return value


def _bounded_int(text: str) -> int:
    # Integers beyond 64 bits do not survive a round trip through most JSON clients; the
    # length check comes first so a 5,000-digit literal costs nothing.
    value = int(text) if len(text) <= MAX_INT_DIGITS else None
    if value is None or not -(2**63) <= value < 2**64:
        raise ValueError(f"the integer {text[:20]}... is outside the 64-bit range")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:  # a strict API: which of two values was meant is not ours to guess
            raise ValueError(f"duplicate key {key[:100]!r}")
        out[key] = value
    return out


def decode_json_object(body: bytes) -> dict[str, Any]:
    """Parse a JSON object body; MalformedBody for anything else (invalid UTF-8, too deep,
    duplicate keys, NaN, numbers out of range, NUL characters, lone surrogates)."""
    try:
        value = json.loads(
            body,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
            object_pairs_hook=_unique_keys,
        )
    except UnicodeDecodeError:
        raise MalformedBody("the body is not valid UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise MalformedBody(f"the body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise MalformedBody("the JSON body must be an object")
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH:  # else it cannot be that deep
        check_depth(value)
    # Walking every string is only needed when one can hold a NUL or a lone surrogate:
    # a \u escape, the byte 0xED that starts an encoded surrogate (json decodes bytes
    # with surrogatepass), or NUL bytes (UTF-16 and UTF-32 bodies, which json also
    # reads, always have some). Raw control characters are rejected by json itself.
    if b"\\u" in body or b"\xed" in body or b"\x00" in body:
        check_text(value)
    return value


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """MalformedBody when objects and arrays in `value` nest deeper than `limit`."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise MalformedBody(f"the body is nested deeper than {limit} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def check_text(value: Any) -> None:
    """MalformedBody when a string (key or value) anywhere in `value` holds a NUL
    character or a lone surrogate: neither can be stored nor sent on as UTF-8."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                raise MalformedBody("a field holds a NUL character")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise MalformedBody("a field holds a lone surrogate (invalid Unicode)") from None


def check_content_encoding(request: web.Request) -> None:
    """UnsupportedContentEncoding unless the body's Content-Encoding is one relay decodes."""
    coding = request.headers.get("Content-Encoding", "").strip().lower()
    if coding not in CONTENT_CODINGS:
        supported = ", ".join(sorted(CONTENT_CODINGS - {""}))
        raise UnsupportedContentEncoding(
            f"unsupported Content-Encoding {coding[:50]!r}: send one of {supported}"
        )


def _too_large(request: web.Request) -> BodyTooLarge:
    limit = request.app[SETTINGS].server.max_body_bytes
    return BodyTooLarge(f"the body is larger than the limit of {limit} bytes")


def _too_slow(request: web.Request) -> RequestTimeout:
    limit = request.app[SETTINGS].server.body_timeout
    return RequestTimeout(f"the body did not arrive within {limit:g}s (server.body_timeout)")


def _undecodable() -> MalformedBody:
    return MalformedBody("the body cannot be decoded as its Content-Encoding says")


async def read_body(request: web.Request) -> bytes:
    """The raw body (decompressed); BodyTooLarge over the configured size,
    UnsupportedContentEncoding or MalformedBody when it cannot be decoded."""
    check_content_encoding(request)
    try:
        if request.content.is_eof():
            # The whole body has arrived with the headers (the common, small case):
            # reading it cannot wait on the client, so no timer is armed for it.
            return await request.read()
        async with asyncio.timeout(request.app[SETTINGS].server.body_timeout):
            return await request.read()
    except TimeoutError:
        raise _too_slow(request) from None
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(request) from None
    except web.RequestPayloadError:
        raise _undecodable() from None


async def _form_fields(request: web.Request) -> dict[str, Any]:
    check_content_encoding(request)
    try:
        async with asyncio.timeout(request.app[SETTINGS].server.body_timeout):
            form: MultiDictProxy[Any] = await request.post()
    except TimeoutError:
        raise _too_slow(request) from None
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(request) from None
    except web.RequestPayloadError:
        raise _undecodable() from None
    except HttpProcessingError:  # a part's header over the line limit, bad framing
        raise MalformedBody("the multipart body cannot be parsed") from None
    except (ValueError, UnicodeDecodeError, LookupError) as exc:
        raise MalformedBody(f"the form body cannot be decoded: {exc}") from None
    for value in form.values():
        if isinstance(value, web.FileField):
            value.file.close()  # uploaded files are not fields of a deployment
    return nest_pairs((k, v) for k, v in form.items() if isinstance(v, str))


def urlencoded_fields(body: bytes) -> dict[str, Any]:
    """Fields of an `application/x-www-form-urlencoded` body; MalformedBody unless UTF-8."""
    # Not request.post(): it decodes %FF into U+FFFD silently; a strict API says 400.
    try:
        pairs = parse_qsl(
            body.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict"
        )
    except UnicodeDecodeError:
        raise MalformedBody("the form body is not valid UTF-8") from None
    return nest_pairs(pairs)


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
        return urlencoded_fields(body)
    raise UnsupportedMediaType(
        f"unsupported content type {ctype!r}: send application/json or "
        "application/x-www-form-urlencoded (or multipart/form-data)"
    )
