"""Releases over HTTP: create, list newest first with paging, get, and refusals."""

from __future__ import annotations

import json

from tests.acceptance.api import (
    WIRE_TIME,
    Client,
    assert_error,
    bearer,
    create,
    get_json,
    list_all,
    post_json,
)
from tests.support import READ_TOKEN, WEB_TOKEN


async def test_create_and_read_a_release(client: Client) -> None:
    """POST /releases groups deployments of several components; GET reads it back."""
    web = await create(client, "web-app", {"version": "1.0", "stage": "production"})
    api = await create(client, "api", {"version": "4.2", "stage": "production"})
    body = {"name": "Spring", "code_name": "Fünke", "notes": "Big one.", "deployments": [web, api]}
    response = await post_json(client, "/releases", body)
    assert response.status == 201, await response.text()
    release = await response.json()
    assert response.headers["Location"] == f"/releases/{release['id']}"
    assert (release["name"], release["code_name"], release["notes"]) == (
        "Spring",
        "Fünke",
        "Big one.",
    )
    assert release["triggered_by"] == "ci" and WIRE_TIME.match(release["created_at"])
    assert [(d["id"], d["component"], d["is_live"]) for d in release["deployments"]] == [
        (web, "web-app", True),
        (api, "api", True),
    ]
    again = await get_json(client, f"/releases/{release['id']}", token=READ_TOKEN)
    assert again == release


async def test_releases_list_newest_first_with_paging(client: Client) -> None:
    """GET /releases pages through every release once, newest first."""
    dep = await create(client, "api", {"version": "1.0"})
    ids = []
    for i in range(5):
        response = await post_json(client, "/releases", {"name": f"R{i}", "deployments": [dep]})
        ids.append((await response.json())["id"])
    items, pages = await list_all(client, "/releases?limit=2")
    assert [r["id"] for r in items] == list(reversed(ids))
    assert pages == 3


async def test_release_refusals(client: Client) -> None:
    """422 for unknown ids or no deployments, 404 unknown release, 403 for a reader."""
    dep = await create(client, "api", {"version": "1.0"})
    error = await assert_error(
        await post_json(client, "/releases", {"name": "R", "deployments": [dep, "nope"]}), 422
    )
    assert error["details"] == [{"field": "deployments", "message": "no deployment 'nope'"}]
    await assert_error(await post_json(client, "/releases", {"name": "R", "deployments": []}), 422)
    await assert_error(await post_json(client, "/releases", {"deployments": [dep]}), 422)
    await assert_error(await client.get("/releases/nope", headers=bearer()), 404)
    body = {"name": "R", "deployments": [dep]}
    await assert_error(await post_json(client, "/releases", body, token=READ_TOKEN), 403)


async def test_a_forbidden_deployment_is_answered_as_an_unknown_one(client: Client) -> None:
    """A token that may not touch a deployment's component gets the very answer an unknown
    id gets, so it cannot learn which ids exist."""
    dep = await create(client, "api", {"version": "1.0"})
    missing = "0" * len(dep)
    answers = []
    for deployment in (dep, missing):
        body = {"name": "R", "deployments": [deployment]}
        error = await assert_error(await post_json(client, "/releases", body, token=WEB_TOKEN), 422)
        answers.append(json.dumps(error).replace(deployment, "ID"))
    assert answers[0] == answers[1]


async def test_a_token_sees_only_releases_of_its_components(client: Client) -> None:
    """A web-* token does not see a release that includes an api deployment."""
    web = await create(client, "web-app", {"version": "1.0"})
    api = await create(client, "api", {"version": "1.0"})
    mixed = await (
        await post_json(client, "/releases", {"name": "M", "deployments": [web, api]})
    ).json()
    only_web = await (
        await post_json(client, "/releases", {"name": "W", "deployments": [web]})
    ).json()
    listed = await get_json(client, "/releases", token=WEB_TOKEN)
    assert [r["id"] for r in listed] == [only_web["id"]]
    await assert_error(await client.get(f"/releases/{mixed['id']}", headers=bearer(WEB_TOKEN)), 404)
