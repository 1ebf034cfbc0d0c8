"""Baseline of the ingest benchmark: the bare aiohttp ceiling for the same request.

    python bench/_baseline_server.py PORT

One handler on relay's ingest route that only parses the JSON body and answers
201 {"id": ...}: no auth, validation, storage or logging. Served like relay serves
(`web.run_app`, no access log) by the same interpreter, so the same aiohttp.
"""

from __future__ import annotations

import sys
import uuid

from aiohttp import web


async def create_deployment(request: web.Request) -> web.Response:
    await request.json()
    return web.json_response({"id": str(uuid.uuid4())}, status=201)


def main(port: int) -> None:
    app = web.Application()
    app.router.add_post("/components/{slug}/deployments", create_deployment)
    # The listen queue relay serves with (server.backlog default).
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=2048)


if __name__ == "__main__":
    main(int(sys.argv[1]))
