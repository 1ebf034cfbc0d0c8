"""The dashboard's server side over HTTP: sign-in sessions, the cross-site guard, the
pages' security headers and the read endpoints the pages use (a real app on SQLite)."""

from __future__ import annotations

from datetime import timedelta
from http.cookies import SimpleCookie
from typing import Any

from aiohttp.test_utils import TestClient

from relay.api.cookies import session_hash
from relay.api.keys import STORE
from relay.api.ui import UI_DIR
from relay.store.dashboard_base import SessionRecord
from relay.timeutil import utcnow
from tests.acceptance.conftest import MakeClient
from tests.support import ADMIN_TOKEN, CI_TOKEN, WEB_TOKEN, WRITE_TOKEN

Client = TestClient[Any, Any]


async def sign_in(client: Client, token: str = ADMIN_TOKEN) -> tuple[str, dict[str, Any]]:
    """POST /session with `token`: the cookie's secret and the answer."""
    response = await client.post("/session", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 201, await response.text()
    cookie = SimpleCookie(response.headers["Set-Cookie"])["relay_session"]
    return cookie.value, await response.json()


def with_cookie(secret: str, **headers: str) -> dict[str, str]:
    """Request headers carrying the session cookie (and `headers`)."""
    return {"Cookie": f"relay_session={secret}", **headers}


async def test_sign_in_sets_a_strict_http_only_expiring_cookie(client: Client) -> None:
    """The token is exchanged for an HttpOnly, SameSite=Strict cookie with a lifetime; the
    answer names the token but never holds it, and the cookie alone then reads the API."""
    response = await client.post("/session", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status == 201
    raw = response.headers["Set-Cookie"]
    cookie = SimpleCookie(raw)["relay_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert int(cookie["max-age"]) == 12 * 3600
    assert "secure" not in raw.lower()  # plain http here
    body = await response.json()
    assert body["signed_in"] and body["name"] == "root" and body["admin"] is True
    assert ADMIN_TOKEN not in await response.text() and ADMIN_TOKEN not in raw
    session = await client.get("/session", headers=with_cookie(cookie.value))
    assert (await session.json())["csrf_token"] == body["csrf_token"]
    assert (await client.get("/components", headers=with_cookie(cookie.value))).status == 200


async def test_the_cookie_is_secure_behind_https(make_client: MakeClient) -> None:
    """With an https public_url the session cookie is marked Secure."""
    client = await make_client(server={"public_url": "https://relay.example.com"})
    response = await client.post("/session", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert SimpleCookie(response.headers["Set-Cookie"])["relay_session"]["secure"]


async def test_sign_in_needs_the_token_in_a_header(client: Client) -> None:
    """A token in the URL does not open a session (it would end up in logs and history),
    and an unknown token is refused."""
    in_url = await client.post(f"/session?access_token={ADMIN_TOKEN}")
    assert in_url.status == 422 and "Set-Cookie" not in in_url.headers
    wrong = await client.post("/session", headers={"Authorization": "Bearer rly_nope"})
    assert wrong.status == 401 and "Set-Cookie" not in wrong.headers


async def test_a_token_that_cannot_read_opens_no_session(client: Client) -> None:
    """A write-only CI token is refused at sign-in (403, no cookie): every view and the
    live feed would refuse it, leaving an empty page that retried the feed forever."""
    response = await client.post("/session", headers={"Authorization": f"Bearer {WRITE_TOKEN}"})
    assert response.status == 403 and "Set-Cookie" not in response.headers
    assert "events:read" in (await response.json())["error"]["message"]


async def test_state_changing_calls_with_the_cookie_need_the_csrf_token(client: Client) -> None:
    """A call that changes something, made with the cookie, is refused without the
    session's X-CSRF-Token or from another origin; with both right it goes through."""
    secret, info = await sign_in(client)
    assert (await client.put("/components/api", headers=with_cookie(secret))).status == 403
    wrong = with_cookie(secret, **{"X-CSRF-Token": "0" * 64})
    assert (await client.put("/components/api", headers=wrong)).status == 403
    foreign = with_cookie(
        secret, **{"X-CSRF-Token": info["csrf_token"], "Origin": "https://evil.example"}
    )
    refused = await client.put("/components/api", headers=foreign)
    assert refused.status == 403 and "cross-site" in (await refused.json())["error"]["message"]
    own = f"http://{client.host}:{client.port}"
    right = with_cookie(secret, **{"X-CSRF-Token": info["csrf_token"], "Origin": own})
    assert (await client.put("/components/api", headers=right)).status == 201


async def test_a_read_only_session_cannot_retry(client: Client) -> None:
    """A retry with a read-only token's cookie and its CSRF token is refused (403)."""
    secret, info = await sign_in(client, CI_TOKEN)
    assert info["admin"] is False
    headers = with_cookie(secret, **{"X-CSRF-Token": info["csrf_token"]})
    response = await client.post("/deliveries/some-id/retry", headers=headers)
    assert response.status == 403


async def test_sign_out_ends_the_session_on_the_server(client: Client) -> None:
    """After DELETE /session the same cookie signs in nobody, wherever it is replayed."""
    secret, info = await sign_in(client)
    out = await client.delete(
        "/session", headers=with_cookie(secret, **{"X-CSRF-Token": info["csrf_token"]})
    )
    assert out.status == 200 and "relay_session=" in out.headers["Set-Cookie"]
    assert (await client.get("/components", headers=with_cookie(secret))).status == 401
    again = await client.get("/session", headers=with_cookie(secret))
    assert (await again.json())["signed_in"] is False


async def test_an_expired_session_signs_in_nobody(client: Client) -> None:
    """A session past its expiry is refused like no session at all."""
    now = utcnow()
    store = client.app[STORE]
    await store.add_session(
        SessionRecord(session_hash("old"), "unused", now - timedelta(days=1), now)
    )
    assert (await client.get("/components", headers=with_cookie("old"))).status == 401


async def test_pages_and_assets_carry_the_security_headers(client: Client) -> None:
    """/ leads to /ui/; the page, every asset and a missing file carry a CSP of this
    origin only (no inline script), nosniff, no-referrer and frame-ancestors 'none'."""
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    root = await client.get("/", headers=browser, allow_redirects=False)
    assert root.status == 302 and root.headers["Location"] == "/ui/"
    names = ["", *sorted(p.name for p in UI_DIR.iterdir()), "missing.js", "..%2Fapp.py"]
    for name in names:
        response = await client.get(f"/ui/{name}")
        assert response.status == (404 if name in ("missing.js", "..%2Fapp.py") else 200), name
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
    script = await client.get("/ui/app.js")
    assert script.content_type == "text/javascript"


async def test_the_first_view_weighs_less_than_300_kb(client: Client) -> None:
    """Everything the dashboard ships (page, styles, scripts, icon) is under 300 KB."""
    total = 0
    for path in UI_DIR.iterdir():
        response = await client.get(f"/ui/{path.name}")
        total += len(await response.read())
    assert 0 < total <= 300_000


async def test_summaries_of_many_deployments_respect_the_token(client: Client) -> None:
    """GET /deliveries/summary answers each named deployment the token may see."""
    ids = {}
    for slug in ("web-shop", "billing"):
        created = await client.post(
            f"/components/{slug}/deployments",
            json={"version": "1.0"},
            headers={"Authorization": f"Bearer {CI_TOKEN}"},
        )
        ids[slug] = (await created.json())["id"]
    query = f"/deliveries/summary?deployment={ids['web-shop']},{ids['billing']},missing"
    everyone = await client.get(query, headers={"Authorization": f"Bearer {CI_TOKEN}"})
    assert [d["component"] for d in await everyone.json()] == ["web-shop", "billing"]
    web = await client.get(query, headers={"Authorization": f"Bearer {WEB_TOKEN}"})
    assert [d["deployment_id"] for d in await web.json()] == [ids["web-shop"]]
    many = ",".join(str(i) for i in range(201))
    too_many = await client.get(
        f"/deliveries/summary?deployment={many}", headers={"Authorization": f"Bearer {CI_TOKEN}"}
    )
    assert too_many.status == 422
    history = await client.get(
        f"/components/web-shop/deployments/{ids['web-shop']}/history",
        headers={"Authorization": f"Bearer {CI_TOKEN}"},
    )
    assert [(h["event_type"], h["status"]) for h in await history.json()] == [
        ("deployment.created", "success")
    ]


async def test_the_api_description_documents_the_dashboard_endpoints(client: Client) -> None:
    """OpenAPI lists the session and summary operations, not the pages."""
    paths = (await (await client.get("/openapi.json")).json())["paths"]
    assert {"post", "get", "delete"} <= set(paths["/session"])
    assert "/deliveries/summary" in paths
    assert "/components/{slug}/deployments/{id}/history" in paths
    assert not [p for p in paths if p.startswith("/ui")]


async def test_behind_a_trusted_https_proxy(client: Client) -> None:
    """Through a trusted proxy saying https and its host, the cookie is Secure and the
    proxy's origin is this server's own (another origin is still refused)."""
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "relay.example.com"}
    response = await client.post(
        "/session", headers={"Authorization": f"Bearer {ADMIN_TOKEN}", **proxied}
    )
    cookie = SimpleCookie(response.headers["Set-Cookie"])["relay_session"]
    assert cookie["secure"]
    csrf = (await response.json())["csrf_token"]
    same = with_cookie(
        cookie.value, **proxied, **{"X-CSRF-Token": csrf, "Origin": "https://relay.example.com"}
    )
    assert (await client.put("/components/api", headers=same)).status == 201
    other = {**same, "Origin": "http://relay.example.com"}
    assert (await client.put("/components/api", headers=other)).status == 403
