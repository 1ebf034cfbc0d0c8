"""Builds: recorded and read back like deployments, under /components/{slug}/builds."""

from __future__ import annotations

from tests.acceptance.api import (
    Client,
    assert_error,
    bearer,
    create,
    get_json,
    list_all,
    post_json,
)
from tests.support import READ_TOKEN


async def test_build_is_recorded_and_read_back(client: Client) -> None:
    """POST a build answers 201 with a Location under /builds; GET returns its fields."""
    response = await post_json(
        client,
        "/components/api/builds",
        {
            "version": "v2.0.0",
            "result": "success",
            "commit_sha": "b927e3797fc56fb8bc093d59ee7a624dafddadd2",
            "branch": "main",
            "started_at": "2018-05-27T15:15:30.311+02:00",
        },
    )
    assert response.status == 201
    build_id = (await response.json())["id"]
    assert response.headers["Location"] == f"/components/api/builds/{build_id}"
    build = await get_json(client, response.headers["Location"])
    assert build["kind"] == "build"
    assert (build["version"], build["branch"], build["status"]) == ("v2.0.0", "main", "success")
    assert build["started_at"] == "2018-05-27T13:15:30.311Z"
    assert build["deliveries"] == []


async def test_build_ignores_deployment_only_fields_with_warnings(client: Client) -> None:
    """stage and host are not build fields: they are ignored and reported as warnings."""
    response = await post_json(
        client, "/components/api/builds/", {"version": "v1", "stage": "prod", "host": "h1"}
    )
    assert response.status == 201
    body = await response.json()
    assert body["warnings"] == [
        "unknown field 'host' was ignored",
        "unknown field 'stage' was ignored",
    ]


async def test_builds_and_deployments_are_separate(client: Client) -> None:
    """Builds are not listed as deployments, and a build id is not found as a deployment."""
    build_id = await create(client, "api", {"version": "v1"}, kind="builds")
    deployment_id = await create(client, "api", {"version": "v1"})
    assert [b["id"] for b in await get_json(client, "/components/api/builds")] == [build_id]
    assert [d["id"] for d in await get_json(client, "/components/api/deployments")] == [
        deployment_id
    ]
    response = await client.get(f"/components/api/deployments/{build_id}", headers=bearer())
    await assert_error(response, 404, "not_found")
    response = await client.get(f"/components/api/builds/{deployment_id}", headers=bearer())
    await assert_error(response, 404, "not_found")


async def test_builds_page_and_filter_like_deployments(client: Client) -> None:
    """Build listings are newest first, filter by result and page through Link headers."""
    ids = [
        await create(
            client,
            "api",
            {
                "version": f"v{i}",
                "result": "success" if i % 2 else "failure",
                "finished_at": f"2018-05-27T13:{i:02d}:00Z",
            },
            kind="builds",
        )
        for i in range(9)
    ]
    items, pages = await list_all(client, "/components/api/builds?limit=2")
    assert [b["id"] for b in items] == list(reversed(ids))
    assert pages == 5
    failed = await get_json(client, "/components/api/builds?result=failure")
    assert [b["id"] for b in failed] == [ids[8], ids[6], ids[4], ids[2], ids[0]]
    response = await client.get("/components/api/builds?limit=0", headers=bearer())
    await assert_error(response, 422, "validation_error")


async def test_builds_need_the_same_scopes(client: Client) -> None:
    """A read-only token may list builds but not record one."""
    response = await post_json(client, "/components/api/builds", {"version": "v1"}, READ_TOKEN)
    await assert_error(response, 403, "forbidden")
    assert await get_json(client, "/components/api/builds", READ_TOKEN) == []


async def test_build_without_version_is_422(client: Client) -> None:
    """A build needs a version too."""
    response = await post_json(client, "/components/api/builds", {"result": "success"})
    error = await assert_error(response, 422, "validation_error")
    assert [d["field"] for d in error["details"]] == ["version"]
