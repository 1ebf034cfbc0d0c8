"""Readiness and liveness handlers (relay/api/ops.py), called directly."""

from __future__ import annotations

import json

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from relay.api.keys import STORE
from relay.api.ops import healthz, readyz
from relay.errors import StoreError
from relay.store.memory.store import MemoryStore


class _UnreachableStore(MemoryStore):
    async def ping(self) -> None:
        raise StoreError("database error: disk I/O error")


class _ClosedStore(MemoryStore):
    async def ping(self) -> None:
        raise RuntimeError("cannot schedule new futures after shutdown")


def _request(store: MemoryStore) -> web.Request:
    app = web.Application()
    app[STORE] = store
    return make_mocked_request("GET", "/readyz", app=app)


def _body(response: web.StreamResponse) -> dict[str, str]:
    assert isinstance(response, web.Response) and response.text is not None
    data: dict[str, str] = json.loads(response.text)
    return data


async def test_liveness_is_ok() -> None:
    """/healthz answers 200 {"status": "ok"}."""
    response = await healthz(_request(MemoryStore()))
    assert (response.status, _body(response)) == (200, {"status": "ok"})


async def test_ready_when_the_store_answers() -> None:
    """/readyz answers 200 {"status": "ready"} when the store answers."""
    response = await readyz(_request(MemoryStore()))
    assert (response.status, _body(response)) == (200, {"status": "ready"})


async def test_not_ready_when_the_store_fails() -> None:
    """/readyz answers 503 with the store's reason when the store does not answer."""
    response = await readyz(_request(_UnreachableStore()))
    assert response.status == 503
    assert _body(response) == {
        "status": "unavailable",
        "reason": "database error: disk I/O error",
    }


async def test_not_ready_when_the_store_fails_unexpectedly() -> None:
    """/readyz answers 503, not 500, when the store fails in an unexpected way (e.g. closed)."""
    response = await readyz(_request(_ClosedStore()))
    assert response.status == 503
    assert _body(response)["status"] == "unavailable"
