"""Listing deployments: order, filters, paging through Link headers, parameter errors."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from yarl import URL

from tests.acceptance.api import (
    Client,
    assert_error,
    bearer,
    create,
    get_json,
    list_all,
    next_link,
    on_server,
    post_json,
)
from tests.support import CI_TOKEN, T0


def _at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


async def _seed(client: Client) -> dict[str, str]:
    """Four deployments of `api` at known times, stages and results."""
    specs = {
        "prod-ok": {"stage": "production", "result": "success", "finished_at": _at(10)},
        "prod-failed": {"stage": "production", "result": "failure", "finished_at": _at(20)},
        "staging-ok": {"stage": "staging", "result": "success", "finished_at": _at(30)},
        "queued": {"stage": "staging", "status": "queued", "started_at": _at(40)},
    }
    return {
        name: await create(client, "api", {"version": name, **spec}) for name, spec in specs.items()
    }


async def test_list_is_a_json_array_newest_first(client: Client) -> None:
    """GET deployments answers a JSON array, the most recent deployment first."""
    ids = await _seed(client)
    response = await client.get("/components/api/deployments", headers=bearer())
    assert response.status == 200
    assert response.content_type == "application/json"
    body = await response.json()
    assert isinstance(body, list)
    assert [d["id"] for d in body] == [
        ids["queued"],
        ids["staging-ok"],
        ids["prod-failed"],
        ids["prod-ok"],
    ]
    assert "Link" not in response.headers
    assert all("deliveries" not in d for d in body)


async def test_sort_uses_the_deployment_time_not_the_arrival_order(client: Client) -> None:
    """A deployment sent late but finished earlier is listed after the newer ones."""
    newer = await create(client, "api", {"version": "new", "finished_at": _at(60)})
    older = await create(client, "api", {"version": "old", "finished_at": _at(1)})
    body = await get_json(client, "/components/api/deployments")
    assert [d["id"] for d in body] == [newer, older]


async def test_empty_component_lists_nothing(client: Client) -> None:
    """A component without deployments answers an empty array."""
    assert await get_json(client, "/components/nothing-here/deployments") == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("stage=production", ["prod-failed", "prod-ok"]),
        ("stage=staging", ["queued", "staging-ok"]),
        ("result=failure", ["prod-failed"]),
        ("status=success", ["staging-ok", "prod-ok"]),
        ("status=queued", ["queued"]),
        ("status=build-error", ["prod-failed"]),
        ("stage=production&result=success", ["prod-ok"]),
        ("stage=nowhere", []),
    ],
)
async def test_filters(client: Client, query: str, expected: list[str]) -> None:
    """stage, result and status filters keep only the matching deployments."""
    ids = await _seed(client)
    body = await get_json(client, f"/components/api/deployments?{query}")
    assert [d["id"] for d in body] == [ids[name] for name in expected]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (f"since={_at(20)}", ["queued", "staging-ok", "prod-failed"]),
        (f"until={_at(20)}", ["prod-ok"]),
        (f"since={_at(15)}&until={_at(35)}", ["staging-ok", "prod-failed"]),
        ("since=2018-05-27T15:35:30.311%2B02:00", ["queued", "staging-ok", "prod-failed"]),
        ("since=2018-05-27T15:35:30.311+02:00", ["queued", "staging-ok", "prod-failed"]),
    ],
)
async def test_time_filters(client: Client, query: str, expected: list[str]) -> None:
    """since (inclusive) and until (exclusive) filter on the deployment time, offsets allowed."""
    ids = await _seed(client)
    response = await client.get(
        URL(f"/components/api/deployments?{query}", encoded=True), headers=bearer()
    )
    assert response.status == 200, await response.text()
    assert [d["id"] for d in await response.json()] == [ids[name] for name in expected]


async def test_paging_follows_link_headers_without_gaps_or_duplicates(client: Client) -> None:
    """Following `Link: <...>; rel="next"` with limit=4 visits all 23 deployments once, in order."""
    # Groups of three share a finished_at: ties must not lose or repeat items across pages.
    ids = [
        await create(client, "api", {"version": f"v{i}", "finished_at": _at(i // 3)})
        for i in range(23)
    ]
    everything = await get_json(client, "/components/api/deployments?limit=500")
    assert {d["id"] for d in everything} == set(ids)
    items, pages = await list_all(client, "/components/api/deployments?limit=4")
    assert [d["id"] for d in items] == [d["id"] for d in everything]
    assert len({d["id"] for d in items}) == 23
    assert pages == 6


async def test_paging_keeps_the_filters(client: Client) -> None:
    """The next-page link keeps the query's filters and limit."""
    for i in range(7):
        await create(client, "api", {"version": f"p{i}", "stage": "production"})
        await create(client, "api", {"version": f"s{i}", "stage": "staging"})
    response = await client.get(
        "/components/api/deployments?stage=production&limit=3", headers=bearer()
    )
    link = next_link(response)
    assert link is not None
    assert URL(link).query["stage"] == "production" and URL(link).query["limit"] == "3"
    items, pages = await list_all(client, "/components/api/deployments?stage=production&limit=3")
    assert (len(items), pages) == (7, 3)
    assert {d["stage"] for d in items} == {"production"}


async def test_next_link_never_carries_the_access_token(client: Client) -> None:
    """A page fetched with ?access_token= links to the next page without the token."""
    for i in range(3):
        await create(client, "api", {"version": f"v{i}"})
    response = await client.get(f"/components/api/deployments?limit=2&access_token={CI_TOKEN}")
    assert response.status == 200
    link = next_link(response)
    assert link is not None
    assert CI_TOKEN not in link and "access_token" not in link
    second = await client.get(on_server(client, link), headers=bearer())
    assert len(await second.json()) == 1


async def test_default_page_is_50(client: Client) -> None:
    """Without limit a page holds 50 deployments and links to the rest."""
    await asyncio.gather(
        *(post_json(client, "/components/api/deployments", {"version": f"v{i}"}) for i in range(52))
    )
    response = await client.get("/components/api/deployments", headers=bearer())
    assert len(await response.json()) == 50
    link = next_link(response)
    assert link is not None
    rest = await client.get(on_server(client, link), headers=bearer())
    assert len(await rest.json()) == 2
    assert next_link(rest) is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=many", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=W1tbW1tbW1tbW1tbW1tb", "cursor"),
        ("status=exploded", "status"),
        ("since=yesterday", "since"),
        ("until=2018-13-45", "until"),
    ],
)
async def test_invalid_parameters_are_422(client: Client, query: str, field: str) -> None:
    """A bad limit, cursor, status or time answers 422 naming the parameter."""
    response = await client.get(f"/components/api/deployments?{query}", headers=bearer())
    error = await assert_error(response, 422, "validation_error")
    assert field in [d["field"] for d in error["details"]]


async def test_next_link_names_the_proxy_a_trusted_proxy_forwards_for(client: Client) -> None:
    """Behind a trusted reverse proxy (loopback by default) the next-page link is on the
    host and scheme its X-Forwarded-Host and -Proto name, as the Scalingo links are."""
    for i in range(3):
        await create(client, "api", {"version": f"v{i}"})
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "relay.example"}
    response = await client.get(
        "/components/api/deployments?limit=2", headers={**bearer(), **forwarded}
    )
    link = next_link(response)
    assert link is not None and link.startswith("https://relay.example/components/api/"), link
