"""Fallback load generator of the benchmarks, used when wrk is missing.

    python bench/_pyload.py '{"url": ..., "headers": {...}, "body": "...",
                              "requests": N, "concurrency": C}'

POSTs the body N times over C keep-alive connections and prints one JSON line:
{"sent": N, "statuses": {"201": n, ...}, "seconds": s}. It runs in its own process
so that it never shares an event loop (or a GIL) with the server it measures.

With "urls": [...] instead of "url", the C connections are spread evenly over those
URLs (the fan-out baseline: one client session posting to several sinks at once).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

import aiohttp


class Tickets:
    """Hands out exactly `total` requests to however many workers ask."""

    def __init__(self, total: int) -> None:
        self.left = total

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


async def worker(
    session: aiohttp.ClientSession,
    url: str,
    spec: dict[str, Any],
    tickets: Tickets,
    seen: Counter[int],
) -> None:
    body = spec["body"].encode("utf-8")
    while tickets.take():
        try:
            async with session.post(url, data=body, headers=spec["headers"]) as resp:
                await resp.read()
                seen[resp.status] += 1
        except aiohttp.ClientError:
            seen[0] += 1  # 0: no HTTP answer at all


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    seen: Counter[int] = Counter()
    tickets = Tickets(spec["requests"])
    urls = spec.get("urls") or [spec["url"]]
    connector = aiohttp.TCPConnector(limit=spec["concurrency"])
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        await asyncio.gather(
            *(
                worker(session, urls[i % len(urls)], spec, tickets, seen)
                for i in range(spec["concurrency"])
            )
        )
        seconds = time.monotonic() - started
    statuses = {str(k): v for k, v in seen.items()}
    return {"sent": spec["requests"], "statuses": statuses, "seconds": seconds}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
