"""Authentication and authorisation over HTTP, and tokens kept out of the logs."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time

import pytest
import structlog
from structlog.testing import capture_logs
from yarl import URL

from relay.api.keys import STORE
from relay.auth import generate_token, new_token_record
from relay.logging import configure
from tests.acceptance.api import Client, assert_error, bearer, create, get_json, post_json
from tests.acceptance.conftest import MakeClient
from tests.support import (
    ADMIN_TOKEN,
    ALL_TOKENS,
    CI_TOKEN,
    READ_TOKEN,
    WEB_TOKEN,
    WRITE_TOKEN,
)

DEPLOYMENTS = "/components/api/deployments"


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"Authorization": f"Bearer {CI_TOKEN}"}, ""),
        ({"Authorization": f"bearer {CI_TOKEN}"}, ""),
        ({"Authorization": f"ApiKey {CI_TOKEN}"}, ""),
        ({"Authorization": CI_TOKEN}, ""),
        ({}, f"access_token={CI_TOKEN}"),
    ],
    ids=["bearer", "bearer-lowercase", "apikey", "bare", "query"],
)
async def test_each_token_form_is_accepted(
    client: Client, headers: dict[str, str], query: str
) -> None:
    """Bearer, ApiKey, a bare Authorization header and ?access_token= all authenticate."""
    response = await client.post(
        f"{DEPLOYMENTS}?{query}",
        json={"version": "v1"},
        headers=headers,
    )
    assert response.status == 201, await response.text()
    listing = await client.get(f"{DEPLOYMENTS}?{query}", headers=headers)
    assert listing.status == 200
    assert len(await listing.json()) == 1


async def test_missing_token_is_401(client: Client) -> None:
    """No token at all answers 401 with a WWW-Authenticate challenge and records nothing."""
    response = await client.post(DEPLOYMENTS, json={"version": "v1"})
    error = await assert_error(response, 401, "unauthenticated")
    assert "Bearer" in error["message"] and "access_token" in error["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert await get_json(client, DEPLOYMENTS) == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer not-a-known-token"},
        {"Authorization": "ApiKey not-a-known-token"},
        {"Authorization": "not-a-known-token"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {CI_TOKEN}"},
    ],
)
async def test_unknown_token_is_401(client: Client, headers: dict[str, str]) -> None:
    """A token relay does not know (or a header without one) answers 401."""
    response = await client.get(DEPLOYMENTS, headers=headers)
    await assert_error(response, 401, "unauthenticated")


async def test_unknown_query_token_is_401(client: Client) -> None:
    """An unknown ?access_token= answers 401."""
    response = await client.get(f"{DEPLOYMENTS}?access_token=not-a-known-token")
    await assert_error(response, 401, "unauthenticated")


async def test_header_is_checked_before_the_query(client: Client) -> None:
    """When both are sent, the Authorization header decides."""
    good_header = await client.get(
        f"{DEPLOYMENTS}?access_token=not-a-known-token", headers=bearer()
    )
    assert good_header.status == 200
    bad_header = await client.get(
        f"{DEPLOYMENTS}?access_token={CI_TOKEN}", headers=bearer("not-a-known-token")
    )
    await assert_error(bad_header, 401, "unauthenticated")


async def test_stored_token_works_until_revoked(client: Client) -> None:
    """A token created in the store authenticates; once revoked it answers 401."""
    assert client.app is not None
    store = client.app[STORE]
    token = generate_token()
    await store.add_token(new_token_record("deploy-bot", token, ["events:write"], ["*"]))
    response = await post_json(client, DEPLOYMENTS, {"version": "v1"}, token)
    assert response.status == 201
    assert await store.revoke_token("deploy-bot") is True
    response = await post_json(client, DEPLOYMENTS, {"version": "v2"}, token)
    await assert_error(response, 401, "unauthenticated")
    assert [d["version"] for d in await get_json(client, DEPLOYMENTS)] == ["v1"]


async def test_read_only_token_cannot_post(client: Client) -> None:
    """A token with only events:read answers 403 on POST and records nothing."""
    response = await post_json(client, DEPLOYMENTS, {"version": "v1"}, READ_TOKEN)
    error = await assert_error(response, 403, "forbidden")
    assert "events:write" in error["message"]
    assert await get_json(client, DEPLOYMENTS, READ_TOKEN) == []


async def test_write_only_token_cannot_read(client: Client) -> None:
    """A token with only events:write may record but not list or read back."""
    response = await post_json(client, DEPLOYMENTS, {"version": "v1"}, WRITE_TOKEN)
    assert response.status == 201
    listing = await client.get(DEPLOYMENTS, headers=bearer(WRITE_TOKEN))
    await assert_error(listing, 403, "forbidden")
    one = await client.get(response.headers["Location"], headers=bearer(WRITE_TOKEN))
    await assert_error(one, 403, "forbidden")


async def test_component_globs_limit_a_token(client: Client) -> None:
    """A token for web-* may use web-front but gets 403 on api, for writes and reads."""
    ok = await post_json(client, "/components/web-front/deployments", {"version": "v1"}, WEB_TOKEN)
    assert ok.status == 201
    denied = await post_json(client, DEPLOYMENTS, {"version": "v1"}, WEB_TOKEN)
    error = await assert_error(denied, 403, "forbidden")
    assert "api" in error["message"]
    await create(client, "api", {"version": "v1"})
    listing = await client.get(DEPLOYMENTS, headers=bearer(WEB_TOKEN))
    await assert_error(listing, 403, "forbidden")


async def test_admin_token_may_do_everything(client: Client) -> None:
    """An admin token writes and reads any component."""
    response = await post_json(client, DEPLOYMENTS, {"version": "v1"}, ADMIN_TOKEN)
    assert response.status == 201
    assert len(await get_json(client, DEPLOYMENTS, ADMIN_TOKEN)) == 1
    assert len(await get_json(client, "/components", ADMIN_TOKEN)) == 1


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json", "/docs"])
async def test_operational_endpoints_need_no_token(client: Client, path: str) -> None:
    """Health, readiness and the API description answer without a token."""
    response = await client.get(path)
    assert response.status == 200


async def test_first_start_without_tokens_prints_an_admin_token_once(
    make_client: MakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no token anywhere, relay prints a new admin token once; it works; logs omit it."""
    with capture_logs() as logs:
        client = await make_client(tokens=[])
    out = capsys.readouterr().out
    match = re.search(r"^\s+(rly_\S+)$", out, re.MULTILINE)
    assert match is not None, out
    token = match.group(1)
    assert "admin_token_created" in [e["event"] for e in logs]
    assert token not in repr(logs)

    response = await post_json(client, DEPLOYMENTS, {"version": "v1"}, token)
    assert response.status == 201
    assert len(await get_json(client, "/components", token)) == 1

    # A second relay on the same database finds the token and prints nothing new.
    await make_client(tokens=[])
    assert "rly_" not in capsys.readouterr().out


async def test_no_admin_token_when_the_config_has_tokens(
    make_client: MakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """A relay configured with tokens does not invent an admin token."""
    await make_client()
    assert "rly_" not in capsys.readouterr().out


async def test_tokens_never_reach_the_log_events(client: Client) -> None:
    """No token — header or query string, valid or not — appears in any log event."""
    unknown = "unknown-secret-token-42"
    with capture_logs() as logs:
        await client.get(DEPLOYMENTS, headers=bearer())
        await client.get(f"{DEPLOYMENTS}?access_token={CI_TOKEN}&stage=x")
        await client.post(f"{DEPLOYMENTS}?access_token={CI_TOKEN}&version=v1")
        await client.get(f"{DEPLOYMENTS}?access_token={unknown}")
        await client.get(URL(f"/no/such/route?access_token={CI_TOKEN}"))
        await client.get(f"{DEPLOYMENTS}?limit=0&access_token={CI_TOKEN}")
    requests = [e for e in logs if e["event"] == "http_request"]
    assert [e["status"] for e in requests] == [200, 200, 201, 401, 404, 422]
    assert requests[1]["path"] == DEPLOYMENTS
    text = repr(logs)
    for token in (*ALL_TOKENS, unknown):
        assert token not in text


async def test_a_redirect_is_logged_with_its_status(client: Client) -> None:
    """The access log gives a redirect its own status (302), not a server error."""
    with capture_logs() as logs:
        answer = await client.get("/ui", allow_redirects=False)
    assert answer.status == 302
    assert [e["status"] for e in logs if e["event"] == "http_request"] == [302]


async def test_rendered_log_lines_carry_no_token(client: Client) -> None:
    """The JSON log lines relay writes name the token, never its value."""
    stream = io.StringIO()
    configure("debug", "json", stream)
    try:
        await client.get(f"{DEPLOYMENTS}?access_token={CI_TOKEN}")
        await client.post(DEPLOYMENTS, json={"version": "v1"}, headers=bearer(ADMIN_TOKEN))
        await client.get(DEPLOYMENTS, headers={"Authorization": "Bearer wrong-token-value-1"})
        # The third request's line is the last one written (the logger may buffer lines).
        deadline = time.monotonic() + 2
        while stream.getvalue().count('"http_request"') < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    finally:
        structlog.reset_defaults()
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["status"] for line in lines if line["event"] == "http_request"] == [
        200,
        201,
        401,
    ]
    for token in (*ALL_TOKENS, "wrong-token-value-1"):
        assert token not in text
