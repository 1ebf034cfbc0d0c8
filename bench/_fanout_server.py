"""Baseline of the pipeline benchmark: bare aiohttp ingesting and fanning out, no storage.

    python bench/_fanout_server.py PORT SINK_URL [SINK_URL ...]

One handler on relay's ingest route: parse the JSON body, answer 201 {"id": ...}, and
post the event (as a JSON envelope with the id) to every sink URL with one aiohttp
ClientSession, in a task of its own, as relay's dispatcher does after the 201. No auth,
validation, storage, retries, signatures or logging: what the same posts cost with no
bookkeeping at all. Served like relay serves (no access log) by the same interpreter.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from typing import Any

import aiohttp
from aiohttp import web

SESSION = web.AppKey("session", aiohttp.ClientSession)
SINKS = web.AppKey("sinks", list)
TASKS: set[asyncio.Task[None]] = set()


async def post_all(session: aiohttp.ClientSession, sinks: list[str], body: bytes) -> None:
    async def one(url: str) -> None:
        async with session.post(
            url, data=body, headers={"Content-Type": "application/json"}
        ) as resp:
            await resp.read()

    await asyncio.gather(*(one(url) for url in sinks), return_exceptions=True)


async def create_deployment(request: web.Request) -> web.Response:
    event: dict[str, Any] = await request.json()
    ident = str(uuid.uuid4())
    body = json.dumps({"type": "deployment.created", "data": {"id": ident, **event}}).encode()
    task = asyncio.create_task(post_all(request.app[SESSION], request.app[SINKS], body))
    TASKS.add(task)
    task.add_done_callback(TASKS.discard)
    return web.json_response({"id": ident}, status=201)


async def session_context(app: web.Application) -> Any:
    # 8 connections per sink, as relay's default forwarder concurrency.
    connector = aiohttp.TCPConnector(limit_per_host=8, limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        app[SESSION] = session
        yield


def main(port: int, sinks: list[str]) -> None:
    app = web.Application()
    app[SINKS] = sinks
    app.cleanup_ctx.append(session_context)
    app.router.add_post("/components/{slug}/deployments", create_deployment)
    # The listen queue relay serves with (server.backlog default).
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=2048)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
