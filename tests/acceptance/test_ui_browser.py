"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against a real
`relay serve` with the five stand-in targets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from relay.standins.base import Fault
from tests.acceptance.ui_support import (
    NARROW,
    TARGETS,
    VIEWER_TOKEN,
    Relay,
    open_page,
    running_relay,
    screenshot_dir,
    sign_in,
)
from tests.delivery_support import eventually
from tests.support import ADMIN_TOKEN

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
EVIL = "<img src=x onerror=alert(1)>"


@pytest.fixture
async def relay(tmp_path: Path) -> Any:
    """A running relay with its stand-in targets."""
    async with running_relay(tmp_path) as running:
        yield running


async def strip_states(page: Any, selector: str) -> dict[str, str]:
    """forwarder → state of the delivery strip under `selector`."""
    found: dict[str, str] = await page.eval_on_selector_all(
        f"{selector} [data-forwarder][data-state]",
        "nodes => Object.fromEntries(nodes.map(n => [n.dataset.forwarder, n.dataset.state]))",
    )
    return found


async def test_a_posted_deployment_appears_live_and_turns_delivered(
    browser: Any, relay: Relay
) -> None:
    """After sign-in, a deployment POSTed meanwhile shows on the overview without a reload,
    and its strip turns delivered for all five targets."""
    page, watched = await open_page(browser, relay)
    await sign_in(page, relay)
    assert await page.locator("#view h1").text_content() == "Overview"
    await page.wait_for_selector("#live:text('live')")
    navigations = len([u for u in watched.requests if u.endswith("/ui/")])
    deployment = await relay.deploy("web-api", version="2.4.1")
    cell = f'td[data-deployment="{deployment}"]'
    await page.wait_for_selector(cell, timeout=10_000)
    await page.wait_for_function(
        "sel => document.querySelectorAll(sel + ' [data-state=delivered]').length === 5",
        arg=cell,
        timeout=20_000,
    )
    assert await strip_states(page, cell) == dict.fromkeys(TARGETS, "delivered")
    assert "2.4.1" in (await page.text_content(cell) or "")
    assert len([u for u in watched.requests if u.endswith("/ui/")]) == navigations
    await page.screenshot(path=str(screenshot_dir() / "overview.png"))
    assert watched.errors == [] and watched.foreign == []


async def test_dead_delivery_shown_with_reason_and_retried_by_an_admin(
    browser: Any, relay: Relay
) -> None:
    """A target refusing permanently shows the delivery dead with its reason; an admin
    retries it from the page once the target is fixed, and it turns delivered."""
    relay.targets["webhook"].faults.append(Fault(400, {"error": "signature rejected"}))
    deployment = await relay.deploy("web-shop", version="9.9.9")

    async def webhook_dead() -> bool:
        _, found = await relay.api("GET", "/deliveries?status=dead")
        return any(d["deployment_id"] == deployment for d in found)

    await eventually(webhook_dead, timeout=20, what="the webhook delivery is dead")
    page, watched = await open_page(browser, relay)
    await sign_in(page, relay)
    await page.click("nav >> text=Dead deliveries")
    row = page.locator('tr[data-forwarder="webhook"]')
    await row.wait_for()
    assert "400" in (await row.text_content() or "")
    await page.screenshot(path=str(screenshot_dir() / "dead.png"))
    await page.goto(f"{relay.url}/ui/#/deployment/web-shop/{deployment}")
    article = page.locator('article[data-forwarder="webhook"]')
    await article.locator('[data-status="dead"]').wait_for()
    assert "400" in (await article.text_content() or "")
    await page.screenshot(path=str(screenshot_dir() / "deployment.png"), full_page=True)
    await article.locator("button.retry").click()  # the target has no fault left: fixed
    await article.locator('[data-status="delivered"]').wait_for(timeout=20_000)
    assert watched.errors == [] and watched.foreign == []


async def test_a_read_only_token_sees_no_retry_and_a_forged_retry_is_refused(
    browser: Any, relay: Relay
) -> None:
    """A read-only token limited to web-* sees only those components and no retry
    control; a retry forged with its cookie (CSRF token included) is refused."""
    relay.targets["grafana"].faults.append(Fault(400, {"message": "bad dashboard"}))
    seen = await relay.deploy("web-ui", version="1.0")
    await relay.deploy("billing", version="3.0")

    async def dead_ids() -> list[str]:
        _, found = await relay.api("GET", "/deliveries?status=dead")
        return [d["id"] for d in found]

    dead_id = (await eventually(dead_ids, timeout=20, what="a dead delivery"))[0]
    page, watched = await open_page(browser, relay)
    await sign_in(page, relay, VIEWER_TOKEN)
    await page.wait_for_selector('tr[data-component="web-ui"]')
    assert await page.locator('tr[data-component="billing"]').count() == 0
    await page.goto(f"{relay.url}/ui/#/deployment/web-ui/{seen}")
    await page.locator('article[data-forwarder="grafana"] [data-status="dead"]').wait_for()
    assert await page.locator("button.retry").count() == 0
    await page.click("nav >> text=Dead deliveries")
    await page.locator('tr[data-forwarder="grafana"]').wait_for()
    assert await page.locator("button.retry, [data-retry-all]").count() == 0
    forged = await page.evaluate(
        """async (id) => {
            const me = await (await fetch('/session')).json();
            const r = await fetch('/deliveries/' + id + '/retry', {
                method: 'POST', headers: {'X-CSRF-Token': me.csrf_token}});
            return r.status;
        }""",
        dead_id,
    )
    assert forged == 403
    _, delivery = await relay.api("GET", "/deliveries?status=dead")
    assert dead_id in [d["id"] for d in delivery]
    assert watched.foreign == []


async def test_the_output_log_follows_appended_lines_live(browser: Any, relay: Relay) -> None:
    """The deployment view of a running deployment shows lines appended after it opened,
    and an HTML log line, version and meta_data as text (no dialog, no element)."""
    deployment = await relay.deploy(
        "web-api", version=EVIL, status="building", meta_data={"note": EVIL}
    )
    path = f"/components/web-api/deployments/{deployment}/output"
    await relay.api("POST", path, {"output": "Step 1/3: fetching"})
    page, watched = await open_page(browser, relay)
    await sign_in(page, relay)
    await page.goto(f"{relay.url}/ui/#/deployment/web-api/{deployment}")
    log = page.locator("pre.log")
    await page.wait_for_function(
        "() => document.querySelector('pre.log')?.textContent.includes('Step 1/3')"
    )
    await relay.api("POST", path, {"output": "Step 2/3: <b>building</b> <script>alert(2)</script>"})
    await page.wait_for_function(
        "() => document.querySelector('pre.log').textContent.includes('Step 2/3')", timeout=10_000
    )
    text = await log.text_content() or ""
    assert "<b>building</b> <script>alert(2)</script>" in text
    assert await page.locator("pre.log b, pre.log script").count() == 0
    assert EVIL in (await page.text_content('[data-field="version"]') or "")
    assert EVIL in (await page.text_content("pre.meta") or "")
    assert await page.locator("#view img").count() == 0
    await page.click("nav >> text=Overview")
    await page.wait_for_selector(f'td[data-deployment="{deployment}"]')
    assert await page.locator("img").count() == 0
    assert watched.dialogs == [] and watched.errors == [] and watched.foreign == []


async def test_every_view_has_its_url_no_error_and_no_foreign_request(
    browser: Any, relay: Relay
) -> None:
    """Each view has its own address (back, forward and reload work), reads at 1280 px and
    390 px, logs no console error and requests nothing from another origin."""
    relay.targets["sentry"].faults.append(Fault(400, {"detail": "unknown project"}))
    await relay.deploy("web-shop", version="3.1.0", stage="production")
    deployment = await relay.deploy("web-api", version="5.0.0")
    for i in range(3):
        await relay.deploy("web-api", version=f"4.{i}", stage="staging")
    await relay.deploy("web-search", version="0.9.0", stage="staging", status="building")
    await relay.deploy("web-search", version="0.8.7", stage="production", result="build-error")

    async def settled() -> bool:
        _, pending = await relay.api("GET", "/deliveries?status=pending")
        return pending == []

    await eventually(settled, timeout=20, what="every delivery settled")
    page, watched = await open_page(browser, relay)
    await sign_in(page, relay)
    views = {
        "overview": "#/",
        "component": "#/component/web-api",
        "deployment": f"#/deployment/web-api/{deployment}",
        "dead": "#/dead",
        "insights": "#/insights",
    }
    for name, address in views.items():
        await page.goto(f"{relay.url}/ui/{address}")
        await page.wait_for_selector("#view:not([aria-busy]) h1")
        await page.screenshot(path=str(screenshot_dir() / f"{name}-1280.png"))
    _, api = await relay.api("GET", "/openapi.json")
    if "/insights/dora" in api["paths"]:
        await page.wait_for_selector('[data-key="deployment_frequency"]')
    else:
        assert await page.locator("[data-unavailable]").count() == 1
    await page.go_back()
    await page.wait_for_selector("#view:not([aria-busy]) h1:text('Dead deliveries')")
    await page.go_back()
    await page.wait_for_selector("#view:not([aria-busy]) h1:text('Deployment')")
    await page.go_forward()
    await page.reload()
    await page.wait_for_selector("#view:not([aria-busy]) h1:text('Dead deliveries')")
    await page.goto(f"{relay.url}/ui/#/component/web-api?stage=staging")
    await page.wait_for_selector("#view:not([aria-busy]) table.history")
    assert await page.locator("table.history tbody tr").count() == 3
    title = await page.get_attribute("table.history time", "title")
    assert title is not None and title.startswith("UTC ") and title.endswith("Z")
    assert watched.errors == [] and watched.foreign == []
    narrow, narrow_watched = await open_page(browser, relay, NARROW)
    await sign_in(narrow, relay)
    width = await narrow.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    await narrow.screenshot(path=str(screenshot_dir() / "overview-390.png"))
    await narrow.goto(f"{relay.url}/ui/#/component/web-api")
    chips = await narrow.locator("table.history tbody tr [data-strip]").first.bounding_box()
    assert chips is not None and chips["x"] + chips["width"] <= 390  # no scrolling to see them
    await narrow.screenshot(path=str(screenshot_dir() / "component-390.png"))
    await narrow.goto(f"{relay.url}/ui/#/dead")
    row = narrow.locator('tr[data-forwarder="sentry"]')
    box = await row.bounding_box()
    assert box is not None and box["height"] < 120  # the reason is not squeezed to a sliver
    assert narrow_watched.errors == []


async def test_keyboard_alone_reaches_a_deployment(browser: Any, relay: Relay) -> None:
    """Tab and Enter sign in and move from the overview to a component and a deployment."""
    deployment = await relay.deploy("web-api", version="7.7.7")
    page, _ = await open_page(browser, relay)
    await page.goto(relay.url + "/")
    await page.focus('input[name="token"]')
    await page.keyboard.type(ADMIN_TOKEN)
    await page.keyboard.press("Enter")
    await page.wait_for_selector('tr[data-component="web-api"] a')
    for _ in range(40):
        await page.keyboard.press("Tab")
        focused = await page.evaluate("document.activeElement.textContent")
        if focused == "web-api":
            break
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#view:not([aria-busy]) h1:text('web-api')")
    for _ in range(40):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.textContent") == "7.7.7":
            break
    await page.keyboard.press("Enter")
    await page.wait_for_selector(f"h1:has-text('{deployment}')")


async def test_a_dropped_feed_resumes_without_missing_a_deployment(
    browser: Any, relay: Relay
) -> None:
    """relay restarts under an open overview; a deployment recorded before the page's feed
    reconnects still shows up (the browser resumes with Last-Event-ID, relay replays it)."""
    await relay.deploy("web-api", version="1.0.0")
    page, _ = await open_page(browser, relay)
    await sign_in(page, relay)
    await page.wait_for_selector("#live:text('live')")
    await relay.instance.stop()
    await page.wait_for_selector("#live:not(:text('live'))")
    await relay.instance.start(relay.http)
    missed = await relay.deploy("web-api", version="1.0.1")  # before the page reconnects
    await page.wait_for_selector(f'td[data-deployment="{missed}"]', timeout=20_000)
    assert await page.locator("#sign-in").is_hidden()  # the session outlived the restart


async def test_a_dropped_feed_resumes_the_log_with_each_line_once(
    browser: Any, relay: Relay
) -> None:
    """relay restarts under an open log: the lines appended before the page reconnects
    come once each from the Last-Event-ID replay, and the view is not read again (a
    second read raced the replay: a line lost or shown twice)."""
    deployment = await relay.deploy("web-api", version="2.0.0", status="building")
    path = f"/components/web-api/deployments/{deployment}/output"
    await relay.api("POST", path, {"output": "line 0"})
    page, watched = await open_page(browser, relay)
    await sign_in(page, relay)
    await page.goto(f"{relay.url}/ui/#/deployment/web-api/{deployment}")
    shows = "n => document.querySelector('pre.log')?.textContent.includes(`line ${n}`)"
    await page.wait_for_function(shows, arg=0)
    await relay.api("POST", path, {"output": "line 1"})  # the page now has a frame id
    await page.wait_for_function(shows, arg=1, timeout=10_000)
    await relay.instance.stop()
    await page.wait_for_selector("#live:not(:text('live'))")
    await relay.instance.start(relay.http)
    for n in range(2, 6):
        await relay.api("POST", path, {"output": f"line {n}"})
    await page.wait_for_function(shows, arg=5, timeout=20_000)
    await page.wait_for_selector("#live:text('live')")
    await page.wait_for_timeout(1_000)  # time for a second read or a late duplicate
    assert await page.text_content("pre.log") == "".join(f"line {n}\n" for n in range(6))
    assert len([u for u in watched.requests if u.endswith("/output")]) == 1


async def test_the_insights_follow_new_deployments_live(browser: Any, relay: Relay) -> None:
    """The insights view reads its DORA figures again when a deployment is recorded."""
    await relay.deploy("web-api", version="1.0.0")
    page, watched = await open_page(browser, relay)
    await sign_in(page, relay)
    await page.goto(f"{relay.url}/ui/#/insights")
    figure = '[data-key="change_failure_rate"] .figure'
    assert "(0 of 1)" in (await page.text_content(figure) or "")
    await relay.deploy("web-api", version="1.0.1")
    await page.wait_for_function(
        "sel => document.querySelector(sel)?.textContent.includes('(0 of 2)')",
        arg=figure,
        timeout=15_000,
    )
    assert watched.errors == []


async def test_a_page_whose_session_ended_returns_to_sign_in(browser: Any, relay: Relay) -> None:
    """Signed out in another tab, an open page sees its feed refused and shows the sign-in
    form by itself (it kept showing stale data under a feed that had closed for good)."""
    page, _ = await open_page(browser, relay)
    await sign_in(page, relay)
    await page.wait_for_selector("#live:text('live')")
    other = await page.context.new_page()
    await other.goto(relay.url + "/ui/")
    await other.click("#sign-out")
    await other.wait_for_selector("#sign-in:not([hidden])")
    await page.wait_for_selector("#sign-in:not([hidden])", timeout=20_000)
    assert await page.locator("#view").inner_html() == ""


async def test_an_admin_retries_all_dead_deliveries_of_a_forwarder(
    browser: Any, relay: Relay
) -> None:
    """On the dead deliveries view, "Retry all" of a forwarder sends each of its dead
    deliveries again; once delivered they leave the list."""
    relay.targets["webhook"].faults += [Fault(400, {"error": "no"}), Fault(400, {"error": "no"})]
    first = await relay.deploy("web-a", version="1")
    second = await relay.deploy("web-b", version="1")

    async def both_dead() -> bool:
        _, found = await relay.api("GET", "/deliveries?status=dead")
        return {d["deployment_id"] for d in found} == {first, second}

    await eventually(both_dead, timeout=20, what="two dead webhook deliveries")
    page, watched = await open_page(browser, relay)
    await sign_in(page, relay)
    await page.click("nav >> text=Dead deliveries")
    await page.click('[data-retry-all="webhook"]')
    await page.wait_for_selector("text=No dead delivery.", timeout=20_000)

    async def both_delivered() -> bool:
        _, found = await relay.api("GET", "/deliveries?forwarder=webhook&status=delivered")
        return {d["deployment_id"] for d in found} == {first, second}

    await eventually(both_delivered, timeout=20, what="both webhook deliveries delivered")
    assert watched.errors == []
