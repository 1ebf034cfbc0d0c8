"""Run inside a network namespace with only loopback up (tests/integration/test_ssrf_namespace.py):
send to disguised spellings of loopback through relay's transport, print what happened.

Prints one JSON object: per URL the outcome (`refused: ...` or what else came back),
and how many requests reached the loopback listener.
"""

from __future__ import annotations

import asyncio
import json
import sys

from aiohttp import web

from relay.delivery.http import AiohttpTransport, HttpRequest
from relay.delivery.netguard import AddressRefused

HOSTS = [
    "2130706433",
    "127.1",
    "0177.0.0.1",
    "0x7f.1",
    "0x7f000001",
    "127.0.0.1.",
    "0",
    "[::ffff:127.0.0.1]",
    "[::ffff:0:127.0.0.1]",
    "[::127.0.0.1]",
    "[64:ff9b::127.0.0.1]",
    "[2002:7f00:1::]",
]


async def main() -> dict[str, object]:
    """Listen on 127.0.0.1 and ::1, try every host, report."""
    hits: list[str] = []

    async def record(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="reached")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    six = web.TCPSite(runner, "::1", port)
    await six.start()
    transport = AiohttpTransport()
    outcomes: dict[str, str] = {}
    try:
        for host in HOSTS:
            url = f"http://{host}:{port}/hook"
            try:
                response = await transport.send(HttpRequest("POST", url, body=b"{}"), timeout=3)
                outcomes[host] = f"answered {response.status}"
            except AddressRefused as exc:
                outcomes[host] = str(exc)
            except (OSError, TimeoutError) as exc:
                outcomes[host] = f"{type(exc).__name__}: {exc}"
    finally:
        await transport.close()
        await runner.cleanup()
    return {"outcomes": outcomes, "hits": len(hits)}


if __name__ == "__main__":
    json.dump(asyncio.run(main()), sys.stdout)
