"""The last instants of year 9999: the latest one relay keeps is accepted, a later one is a
422 naming its field (they once answered 503: SQLite rounds them into year 10000)."""

from __future__ import annotations

import json

import pytest

from tests.acceptance.api import Client, assert_error, bearer, post_json

DEPLOYMENTS = "/components/api/deployments"
TOO_LATE = "9999-12-31T23:59:59.9999Z"
LATEST = "9999-12-31T23:59:59.999Z"


@pytest.mark.parametrize("field", ["started_at", "finished_at", "committed_at"])
async def test_a_time_past_the_last_millisecond_is_a_422_naming_it(
    client: Client, field: str
) -> None:
    """A finished deployment whose time would round into year 10000 is refused, not a 503."""
    body = {"version": "v1", "result": "success", field: TOO_LATE}
    response = await post_json(client, DEPLOYMENTS, body)
    error = await assert_error(response, 422, "validation_error")
    assert [d["field"] for d in error["details"]] == [field]


async def test_the_last_millisecond_of_year_9999_is_kept(client: Client) -> None:
    """`9999-12-31T23:59:59.999Z` is stored and read back as it was sent."""
    body = {"version": "v1", "result": "success", "started_at": LATEST, "finished_at": LATEST}
    created = await post_json(client, DEPLOYMENTS, body)
    assert created.status == 201, await created.text()
    read = await client.get(created.headers["Location"], headers=bearer())
    assert (await read.json())["finished_at"] == LATEST


async def test_a_patch_past_the_last_millisecond_is_a_422(client: Client) -> None:
    """PATCH finished_at past the last millisecond is refused naming finished_at."""
    created = await post_json(client, DEPLOYMENTS, {"version": "v1", "status": "starting"})
    assert created.status == 201, await created.text()
    response = await client.patch(
        created.headers["Location"],
        data=json.dumps({"status": "success", "finished_at": TOO_LATE}),
        headers={**bearer(), "Content-Type": "application/json"},
    )
    error = await assert_error(response, 422, "validation_error")
    assert [d["field"] for d in error["details"]] == ["finished_at"]
