"""/docs in a real browser (system Chromium driven by Playwright): the page loads
/openapi.json and renders every operation, with no console error."""

from __future__ import annotations

from typing import Any

from relay.api import all_routes
from tests.acceptance.api import Client


async def test_docs_page_renders_every_operation(client: Client, browser: Any) -> None:
    """Every operation of the route table is on the page (method and path), the WebSocket
    ones included, and the browser logged no error and no failed request."""
    page = await browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    response = await page.goto(str(client.make_url("/docs")))
    assert response is not None and response.status == 200
    await page.wait_for_selector("#ops[data-loaded=true]", timeout=10_000)
    assert "Could not load" not in await page.inner_text("#ops")
    shown = await page.eval_on_selector_all(
        "details.op", "els => els.map(e => [e.dataset.method, e.dataset.path])"
    )
    expected = {(r.method, r.path) for r in all_routes()}
    assert {(m, p) for m, p in shown} == expected
    assert len(shown) == len(expected)
    stream = page.locator('details.op[data-path="/stream"]')
    await stream.locator("summary").click()
    assert "Answers 101" in await stream.inner_text()
    await page.close()
    assert problems == []
