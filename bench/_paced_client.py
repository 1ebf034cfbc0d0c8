"""Open-loop client of the latency benchmarks: POSTs at a fixed rate, notes each 201.

    python bench/_paced_client.py '{"url": ..., "headers": {...}, "body": "...",
                                    "rate": R, "warmup": W, "seconds": S}'

Sends request i at start + i/R for W + S seconds whether or not earlier answers have
arrived (a closed loop would slow down with the server and hide its queueing), and
prints one JSON line: {"sent": n, "statuses": {...}, "behind": s, "answers":
[[id, time, warm], ...]}, where `time` is `time.time()` when the 201 had been read
(comparable with the sinks' clock on this machine), `warm` marks the first W seconds
and `behind` is the longest a send started after its slot (the client's own lag).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

import aiohttp

# Far above R x latency: at 200/s a request would have to hang for 0.3 s to reach it.
MAX_CONNECTIONS = 64


async def post(
    session: aiohttp.ClientSession,
    spec: dict[str, Any],
    warm: bool,
    seen: Counter[int],
    answers: list[tuple[str, float, bool]],
) -> None:
    try:
        async with session.post(spec["url"], data=spec["body"], headers=spec["headers"]) as resp:
            payload = await resp.read()
            at = time.time()
            seen[resp.status] += 1
    except aiohttp.ClientError:
        seen[0] += 1  # 0: no HTTP answer at all
        return
    if resp.status == 201:
        answers.append((json.loads(payload)["id"], at, warm))


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    rate, warmup = float(spec["rate"]), float(spec["warmup"])
    total = round((warmup + float(spec["seconds"])) * rate)
    spec = {**spec, "body": spec["body"].encode("utf-8")}
    seen: Counter[int] = Counter()
    answers: list[tuple[str, float, bool]] = []
    tasks: list[asyncio.Task[None]] = []
    behind = 0.0
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = loop.time()
        for i in range(total):
            slot = start + i / rate
            delay = slot - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            behind = max(behind, loop.time() - slot)
            warm = i < warmup * rate
            tasks.append(asyncio.create_task(post(session, spec, warm, seen, answers)))
        await asyncio.gather(*tasks)
    statuses = {str(k): v for k, v in seen.items()}
    return {"sent": total, "statuses": statuses, "behind": behind, "answers": answers}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
