"""Badges over HTTP on a real SQLite file: what they show, the shields.io endpoint JSON,
who may read them (public globs, badge keys, tokens), and HTTP caching."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pytest_aiohttp import AiohttpClient

from relay.api.keys import INSIGHTS
from relay.app import create_app
from relay.insights.badges import badge_key
from tests.acceptance.api import Client, bearer, create
from tests.support import READ_TOKEN, WEB_TOKEN, make_settings

SVG = "{http://www.w3.org/2000/svg}"
GREEN, RED, BLUE, GREY = "#4c1", "#e05d44", "#007ec6", "#9f9f9f"
# The shields.io endpoint badge schema (https://shields.io/badges/endpoint-badge).
ENDPOINT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["schemaVersion", "label", "message"],
    "properties": {
        "schemaVersion": {"const": 1},
        "label": {"type": "string"},
        "message": {"type": "string", "minLength": 1},
        "color": {"type": "string"},
        "labelColor": {"type": "string"},
        "isError": {"type": "boolean"},
        "namedLogo": {"type": "string"},
        "logoSvg": {"type": "string"},
        "logoColor": {"type": "string"},
        "logoWidth": {"type": "number"},
        "style": {"type": "string"},
        "cacheSeconds": {"type": "integer", "minimum": 0},
    },
    "additionalProperties": False,
}


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, db_path: Path) -> Client:
    """A relay whose `web-*` badges are public."""
    settings = make_settings(db_path, sections={"badges": {"public": ["web-*"]}})
    return await aiohttp_client(create_app(settings))


def parsed(text: str) -> tuple[str, str]:
    """(title text, message box colour) of a badge SVG, which must parse as XML."""
    root = ET.fromstring(text)
    title = root.find(f"{SVG}title")
    assert title is not None and title.text is not None
    fills = [r.get("fill") for r in root.iter(f"{SVG}rect") if r.get("x")]
    return title.text, str(fills[0])


async def svg(client: Client, path: str, **headers: str) -> tuple[str, str]:
    """GET a badge SVG (200) and parse it."""
    response = await client.get(path, headers=headers)
    assert response.status == 200, await response.text()
    assert response.content_type == "image/svg+xml"
    return parsed(await response.text())


@pytest.mark.parametrize("style", ["flat", "flat-square"])
async def test_badges_show_the_live_version_and_the_latest_status_in_words_and_colour(
    client: Client, style: str
) -> None:
    """None yet, success, failure and in progress: each its own text and colour."""
    path = f"/components/web-app/badge.svg?stage=production&style={style}"
    assert await svg(client, path) == ("production: no deployments", GREY)
    await create(client, "web-app", {"version": "1.4.2", "stage": "production"})
    assert await svg(client, path) == ("production: 1.4.2 ✓", GREEN)
    await create(client, "web-app", {"version": "1.5.0", "stage": "production", "result": "x"})
    assert await svg(client, path) == ("production: 1.4.2 · 1.5.0 failed", RED)
    body = {"version": "1.5.1", "stage": "production", "status": "building"}
    await create(client, "web-app", body)
    assert await svg(client, path) == ("production: 1.4.2 · 1.5.1 deploying", BLUE)
    assert await svg(client, path + "&label=prod") == ("prod: 1.4.2 · 1.5.1 deploying", BLUE)
    assert await svg(client, f"/components/web-app/badge.svg?stage=staging&style={style}") == (
        "staging: no deployments",
        GREY,
    )


async def test_build_badges_show_the_latest_build(client: Client) -> None:
    """kind=build: passing in green, failing in red."""
    path = "/components/web-app/badge.svg?kind=build"
    assert await svg(client, path) == ("build: no builds", GREY)
    await create(client, "web-app", {"version": "9"}, kind="builds")
    assert await svg(client, path) == ("build: 9 passing", GREEN)
    await create(client, "web-app", {"version": "10", "result": "failure"}, kind="builds")
    assert await svg(client, path) == ("build: 10 failing", RED)
    assert await svg(client, path + "&stage=production") == ("build: 10 failing", RED)


async def test_a_hostile_version_is_escaped_in_the_svg(client: Client) -> None:
    """A version with markup stays text: the SVG parses and holds no script element."""
    version = '<script>alert("x")</script>&'
    await create(client, "web-app", {"version": version, "stage": "production"})
    response = await client.get("/components/web-app/badge.svg?stage=production")
    text = await response.text()
    assert "<script>" not in text
    assert parsed(text) == (f"production: {version} ✓", GREEN)
    root = ET.fromstring(text)
    assert not [e for e in root.iter() if e.tag.endswith("script")]


async def test_the_json_badge_validates_against_the_shields_endpoint_schema(
    client: Client,
) -> None:
    """badge.json follows the endpoint schema, with the status colour by name."""
    answers = []
    for body in ({"version": "1"}, {"version": "2", "result": "failure"}):
        await create(client, "web-app", {**body, "stage": "production"})
        response = await client.get("/components/web-app/badge.json?stage=production")
        assert response.status == 200
        answers.append(await response.json())
    response = await client.get("/components/web-none/badge.json")
    answers.append(await response.json())
    for answer in answers:
        jsonschema.validate(answer, ENDPOINT_SCHEMA)
    assert answers[0] == {
        "schemaVersion": 1,
        "label": "production",
        "message": "1 ✓",
        "color": "brightgreen",
        "isError": False,
    }
    assert (answers[1]["color"], answers[1]["isError"]) == ("red", True)
    assert (answers[2]["message"], answers[2]["color"]) == ("no deployments", "lightgrey")


async def test_public_badges_only_for_the_listed_components(client: Client) -> None:
    """Without a token: a `web-*` badge answers, any other 401; a token opens its own."""
    assert (await client.get("/components/web-app/badge.svg")).status == 200
    refused = await client.get("/components/api/badge.svg")
    assert refused.status == 401
    assert (await refused.json())["error"]["code"] == "unauthenticated"
    assert (await client.get("/components/api/badge.json")).status == 401
    assert (await client.get("/components/api/badge.svg", headers=bearer(READ_TOKEN))).status == 200
    other = await client.get("/components/api/badge.svg", headers=bearer(WEB_TOKEN))
    assert other.status == 403


async def test_a_badge_key_opens_its_badges_and_nothing_else_until_rotated(
    client: Client,
) -> None:
    """The key of `api` opens api's SVG and JSON badges, no other component's badge and no
    other route; after a rotation it opens nothing."""
    await create(client, "api", {"version": "3", "stage": "production"})
    service = client.app[INSIGHTS]
    key = badge_key(await service.badge_secret(), "api")
    assert await svg(client, f"/components/api/badge.svg?stage=production&key={key}") == (
        "production: 3 ✓",
        GREEN,
    )
    assert (await client.get(f"/components/api/badge.json?key={key}")).status == 200
    assert (await client.get(f"/components/billing/badge.svg?key={key}")).status == 403
    for path in ("/components/api/deployments", "/insights/dora", "/components"):
        assert (await client.get(f"{path}?key={key}")).status == 401
        assert (await client.get(f"{path}?access_token={key}")).status == 401
        assert (await client.get(path, headers=bearer(key))).status == 401
    await service.rotate()
    assert (await client.get(f"/components/api/badge.svg?key={key}")).status == 403
    fresh = badge_key(await service.badge_secret(), "api")
    assert fresh != key
    assert (await client.get(f"/components/api/badge.svg?key={fresh}")).status == 200


async def test_badges_carry_an_etag_and_answer_304_until_a_deployment_changes_them(
    client: Client,
) -> None:
    """If-None-Match with the current ETag: 304; after a new deployment: 200, new ETag."""
    path = "/components/web-app/badge.svg?stage=production"
    await create(client, "web-app", {"version": "1", "stage": "production"})
    first = await client.get(path)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "public, max-age=60"
    again = await client.get(path, headers={"If-None-Match": etag})
    assert again.status == 304
    assert again.headers["ETag"] == etag
    await create(client, "web-app", {"version": "2", "stage": "production"})
    changed = await client.get(path, headers={"If-None-Match": etag})
    assert changed.status == 200
    assert changed.headers["ETag"] != etag
    private = await client.get("/components/api/badge.json", headers=bearer(READ_TOKEN))
    assert private.headers["Cache-Control"].startswith("private")


async def test_bad_badge_parameters_answer_422(client: Client) -> None:
    """An unknown style or kind, or an invalid slug, is a clear validation error."""
    for path in (
        "/components/web-app/badge.svg?style=plastic3d",
        "/components/web-app/badge.svg?kind=release",
        "/components/Web_App!/badge.svg",
    ):
        response = await client.get(path)
        assert response.status == 422, path
        assert (await response.json())["error"]["code"] == "validation_error"


async def test_a_key_that_is_not_ascii_is_refused_not_a_500(client: Client) -> None:
    """A badge key with non-ASCII characters (a mangled paste) is a 403 like any wrong key."""
    for key in ("%C3%A9", "k%E2%9C%93y", "%F0%9F%94%91"):
        response = await client.get(f"/components/api/badge.svg?key={key}")
        assert response.status == 403, key
        assert (await response.json())["error"]["code"] == "forbidden"


@pytest.mark.parametrize("style", ["flat", "flat-square"])
async def test_control_characters_never_break_the_svg(client: Client, style: str) -> None:
    """A version with an ANSI colour code or U+FFFF, or a label with control characters
    (none of them allowed in XML), still gives an SVG that parses, each shown as U+FFFD."""
    await create(client, "web-app", {"version": "1.0\x1b[31m\uffff", "stage": "production"})
    path = f"/components/web-app/badge.svg?stage=production&style={style}&label=a%01b"
    assert await svg(client, path) == ("a\ufffdb: 1.0\ufffd[31m\ufffd ✓", GREEN)
