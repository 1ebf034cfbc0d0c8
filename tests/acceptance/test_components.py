"""GET /components: every component with its latest deployment per stage."""

from __future__ import annotations

from tests.acceptance.api import WIRE_TIME, Client, assert_error, bearer, create, get_json
from tests.acceptance.conftest import MakeClient
from tests.support import ADMIN_TOKEN, WEB_TOKEN, WRITE_TOKEN


async def test_components_show_latest_deployment_per_stage(client: Client) -> None:
    """Each component lists the newest deployment of each of its stages."""
    await create(
        client,
        "api",
        {"version": "v1", "stage": "production", "finished_at": "2018-05-27T10:00:00Z"},
    )
    prod = await create(
        client,
        "api",
        {"version": "v2", "stage": "production", "finished_at": "2018-05-27T11:00:00Z"},
    )
    staging = await create(
        client,
        "api",
        {"version": "v3", "stage": "staging", "finished_at": "2018-05-27T09:00:00Z"},
    )
    # Sent after v2 but deployed before it: not the latest.
    await create(
        client,
        "api",
        {"version": "v0", "stage": "production", "finished_at": "2018-05-27T08:00:00Z"},
    )
    web = await create(client, "web", {"version": "w1", "stage": "production"})

    components = await get_json(client, "/components")
    assert [c["slug"] for c in components] == ["api", "web"]
    api = components[0]
    assert {d["stage"]: (d["id"], d["version"]) for d in api["latest_deployments"]} == {
        "production": (prod, "v2"),
        "staging": (staging, "v3"),
    }
    assert [d["id"] for d in components[1]["latest_deployments"]] == [web]
    assert api["created_at"].endswith("Z")
    assert all("deliveries" not in d for c in components for d in c["latest_deployments"])


async def test_component_with_only_builds_has_no_latest_deployments(client: Client) -> None:
    """A component that only has builds is listed with no deployments."""
    await create(client, "worker", {"version": "v1"}, kind="builds")
    [worker] = await get_json(client, "/components")
    assert (worker["slug"], worker["latest_deployments"]) == ("worker", [])
    assert WIRE_TIME.match(worker["created_at"])


async def test_no_components_yet(client: Client) -> None:
    """A new relay has no components."""
    assert await get_json(client, "/components") == []


async def test_tokens_see_only_their_components(client: Client) -> None:
    """A token limited to web-* lists only the web-* components."""
    for slug in ("api", "web-front", "web-admin"):
        await create(client, slug, {"version": "v1"})
    visible = await get_json(client, "/components", WEB_TOKEN)
    assert [c["slug"] for c in visible] == ["web-admin", "web-front"]


async def test_listing_components_needs_read_scope(client: Client) -> None:
    """A write-only token may not list components."""
    response = await client.get("/components", headers=bearer(WRITE_TOKEN))
    await assert_error(response, 403, "forbidden")


async def test_admin_registers_a_component_for_strict_mode(make_client: MakeClient) -> None:
    """With strict_components, an admin PUT /components/{slug} lets events for it in."""
    strict = await make_client(server={"strict_components": True})
    admin = bearer(ADMIN_TOKEN)
    body = {"version": "v1"}
    before = await strict.post("/components/billing/deployments", json=body, headers=admin)
    assert before.status == 404
    created = await strict.put("/components/billing", headers=admin)
    assert (created.status, (await created.json())["created"]) == (201, True)
    again = await strict.put("/components/billing", headers=admin)
    assert (again.status, (await again.json())["created"]) == (200, False)
    after = await strict.post("/components/billing/deployments", json=body, headers=admin)
    assert after.status == 201


async def test_only_admins_register_components(client: Client) -> None:
    """A token without the admin scope gets 403 from PUT /components/{slug}."""
    response = await client.put("/components/billing", headers=bearer(WRITE_TOKEN))
    assert response.status == 403
