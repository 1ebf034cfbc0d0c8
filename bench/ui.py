"""The dashboard's time to first render (issue: the dashboard), in Debian's Chromium.

A relay on SQLite (served in this process, deliveries left pending: no dispatch) holds
50 components x 4 stages and one component with a history of 1,000 deployments, each
with 5 forwarders' outbox rows. A signed-in page is opened on
- `#/` (the overview): from navigation to the grid drawn with its delivery strips;
- `#/component/history?limit=500` and one "Load more": to 1,000 rows drawn.
Each round is a fresh page. The notes give the longest main-thread task seen while
the history rendered (the page stays responsive when it is short).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from _harness import BenchError, Options, Result
from aiohttp import web

from relay.app import create_app
from relay.logging import configure
from relay.settings import build_settings

TOKEN = "bench-ui-token-0123456789"
COMPONENTS, STAGES, HISTORY = 50, ("dev", "qa", "staging", "production"), 1000
FORWARDERS = 5
CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
LONG_TASKS = """
window.__longest = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    window.__longest = Math.max(window.__longest, entry.duration);
  }
}).observe({ type: "longtask", buffered: true });
"""


def _settings(db: Path) -> Any:
    hooks = [
        {"name": f"hook-{i}", "type": "webhook", "url": f"http://127.0.0.1:9/hook-{i}",
         "secret": "whsec_" + "a" * 32}
        for i in range(FORWARDERS)
    ]  # fmt: skip
    return build_settings(
        {
            "storage": {"url": f"sqlite:///{db}"},
            "tokens": [{"name": "bench", "token": TOKEN, "scopes": ["admin"]}],
            "forwarders": hooks,
            "security": {"allow_networks": ["127.0.0.0/8"]},
        }
    )


async def _fill(base: str) -> None:
    bodies = [
        (f"svc-{c:02d}", {"version": f"1.{c}.{s}", "stage": stage})
        for c in range(COMPONENTS)
        for s, stage in enumerate(STAGES)
    ] + [("history", {"version": f"2.0.{i}", "stage": STAGES[i % 4]}) for i in range(HISTORY)]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    for item in bodies:
        queue.put_nowait(item)

    async def worker(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            slug, body = queue.get_nowait()
            async with http.post(f"{base}/components/{slug}/deployments", json=body) as r:
                if r.status != 201:
                    raise BenchError(f"recording failed: {r.status} {await r.text()}")

    async with aiohttp.ClientSession(headers=headers) as http:
        await asyncio.gather(*(worker(http) for _ in range(16)))


async def _measure(base: str, rounds: int) -> tuple[list[float], list[float], list[float]]:
    from playwright.async_api import async_playwright

    path = next((p for p in CHROMIUM if Path(p).exists()), None)
    if path is None:
        raise BenchError("no Chromium (make browser installs it)")
    overview, history, longest = [], [], []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=path, args=LAUNCH_ARGS)
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        await context.add_init_script(LONG_TASKS)
        page = await context.new_page()
        await page.goto(base + "/ui/")
        await page.fill('input[name="token"]', TOKEN)
        await page.click('button[type="submit"]')
        await page.wait_for_selector("#view:not([aria-busy]) table.grid")
        for _ in range(rounds):
            started = time.perf_counter()
            await page.goto(base + "/ui/#/", wait_until="commit")
            await page.wait_for_function(
                "n => document.querySelectorAll('table.grid td [data-strip]').length === n",
                arg=COMPONENTS * len(STAGES) + len(STAGES),
            )
            overview.append((time.perf_counter() - started) * 1000)
            await page.evaluate("window.__longest = 0")
            started = time.perf_counter()
            await page.goto(base + "/ui/#/component/history?limit=500", wait_until="commit")
            await page.click("text=Load more")
            await page.wait_for_function(
                "n => document.querySelectorAll('table.history tbody tr').length === n",
                arg=HISTORY,
            )
            history.append((time.perf_counter() - started) * 1000)
            longest.append(float(await page.evaluate("window.__longest")))
            await page.goto("about:blank")
        await browser.close()
    return overview, history, longest


async def _run(rounds: int) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="relay-bench-ui-") as tmp:
        runner = web.AppRunner(create_app(_settings(Path(tmp) / "relay.db"), dispatch=False))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            await _fill(base)
            overview, history, longest = await _measure(base, rounds)
        finally:
            await runner.cleanup()
    notes = [
        f"{COMPONENTS} components x {len(STAGES)} stages plus a history of {HISTORY} "
        f"deployments, {FORWARDERS} forwarders' rows each; a fresh navigation per round",
        "longest main-thread task while the history rendered (ms, per round): "
        + json.dumps([round(v) for v in longest]),
        f"median longest task {statistics.median(longest):.0f} ms",
    ]
    return [
        Result("ui", "overview first render ms", overview, [], 1000.0, False, notes),
        Result("ui", "history of 1,000 first render ms", history, [], 3000.0, False),
    ]


def run(opts: Options) -> list[Result]:
    """Time the overview and a 1,000-deployment history in a real browser."""
    configure("warning", "console")
    return asyncio.run(_run(min(opts.rounds, 5)))
