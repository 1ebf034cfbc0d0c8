"""The lifecycle over HTTP on a whole relay: PATCH, Cloud66's DELETE and facts, output logs."""

from __future__ import annotations

import json
from typing import Any

from relay.api.keys import OUTPUTS
from relay.models import Deployment
from relay.records.outputs import MAX_OUTPUT_BYTES
from tests.acceptance.api import (
    WIRE_TIME,
    Client,
    assert_error,
    bearer,
    create,
    get_json,
    post_json,
)
from tests.support import READ_TOKEN, WEB_TOKEN


async def patch(client: Client, component: str, record_id: str, body: dict[str, Any]) -> Any:
    """PATCH a deployment with a JSON body; the response."""
    return await client.patch(
        f"/components/{component}/deployments/{record_id}",
        data=json.dumps(body),
        headers={"Content-Type": "application/json", **bearer()},
    )


async def test_patch_walks_the_lifecycle(client: Client) -> None:
    """queued → building → pushing → success, each PATCH answering the updated deployment."""
    dep = await create(client, "api", {"version": "1.0", "stage": "production", "status": "queued"})
    for status in ("building", "pushing"):
        response = await patch(client, "api", dep, {"status": status})
        assert response.status == 200, await response.text()
        body = await response.json()
        assert (body["status"], body["is_deploying"], body["finished_at"]) == (status, True, None)
    response = await patch(client, "api", dep, {"status": "success", "host": "web-1"})
    body = await response.json()
    assert (body["status"], body["result"], body["host"]) == ("success", "success", "web-1")
    assert WIRE_TIME.match(body["finished_at"]) and WIRE_TIME.match(body["started_at"])
    assert (body["is_deploying"], body["is_live"], body["triggered_by"]) == (False, True, "ci")
    assert body["id"] == dep and body["deliveries"] == []


async def test_an_invalid_transition_is_409_with_where_it_stands(client: Client) -> None:
    """Leaving a terminal status answers 409 with the current status and no allowed moves."""
    dep = await create(client, "api", {"version": "1.0"})  # recorded in one call: success
    error = await assert_error(await patch(client, "api", dep, {"status": "building"}), 409)
    assert error["code"] == "invalid_transition"
    assert (error["current_status"], error["allowed_next"]) == ("success", [])
    going = await create(client, "api", {"version": "1.1", "status": "starting"})
    error = await assert_error(await patch(client, "api", going, {"status": "queued"}), 409)
    assert error["current_status"] == "starting"
    assert error["allowed_next"][0] == "success" and "aborted" in error["allowed_next"]


async def test_patch_rejects_bad_bodies_and_unknown_ids(client: Client) -> None:
    """422 without a valid status, 404 for an unknown deployment, 403 for a reader."""
    dep = await create(client, "api", {"version": "1.0", "status": "queued"})
    await assert_error(await patch(client, "api", dep, {"status": "finished"}), 422)
    await assert_error(await patch(client, "api", dep, {"result": "success"}), 422)
    await assert_error(await patch(client, "api", "no-such-id", {"status": "success"}), 404)
    response = await client.patch(
        f"/components/api/deployments/{dep}", json={"status": "success"}, headers=bearer(READ_TOKEN)
    )
    await assert_error(response, 403)


async def test_delete_cancels_like_cloud66(client: Client) -> None:
    """DELETE answers 200 {"ok": true, "message": "Deployment cancelled"}; again → 409."""
    dep = await create(client, "api", {"version": "1.0", "status": "building"})
    response = await client.delete(f"/components/api/deployments/{dep}", headers=bearer())
    assert response.status == 200
    assert await response.json() == {"ok": True, "message": "Deployment cancelled"}
    record = await get_json(client, f"/components/api/deployments/{dep}")
    assert (record["status"], record["result"], record["is_live"]) == ("aborted", "aborted", False)
    again = await client.delete(f"/components/api/deployments/{dep}", headers=bearer())
    error = await assert_error(again, 409, "invalid_transition")
    assert error["current_status"] == "aborted"


async def test_rollback_v1_v2_v1_over_http(client: Client) -> None:
    """The third deployment (v1 again) is a rollback; v2 is reverted by its token."""
    ids = [
        await create(client, "api", {"version": v, "stage": "production"})
        for v in ("v1", "v2", "v1")
    ]
    first, second, third = [await get_json(client, f"/components/api/deployments/{i}") for i in ids]
    assert [d["is_rollback"] for d in (first, second, third)] == [False, False, True]
    assert [d["is_live"] for d in (first, second, third)] == [False, False, True]
    assert (second["reverted"], second["reverted_by"]) == (True, "ci")
    assert second["reverted_at"] == third["finished_at"]
    assert (first["reverted"], third["reverted"]) == (False, False)
    listing = await get_json(client, "/components/api/deployments")
    assert [(d["id"], d["is_live"]) for d in listing] == [
        (ids[2], True),
        (ids[1], False),
        (ids[0], False),
    ]
    components = await get_json(client, "/components")
    (latest,) = components[0]["latest_deployments"]
    assert (latest["id"], latest["is_live"], latest["is_rollback"]) == (ids[2], True, True)


async def test_output_log_appends_text_and_json(client: Client) -> None:
    """Appended text (plain or JSON) reads back as text/plain, line by line."""
    dep = await create(client, "api", {"version": "1.0", "status": "building"})
    path = f"/components/api/deployments/{dep}/output"
    seen: list[tuple[str, list[str]]] = []
    client.app[OUTPUTS].on_output.append(lambda d, lines: seen.append((d.id, lines)))
    first = await client.post(
        path,
        data="Cloning…\r\nBuilding\n".encode(),
        headers={"Content-Type": "text/plain", **bearer()},
    )
    assert first.status == 200, await first.text()
    assert await first.json() == {"ok": True, "appended": 2, "lines": 2, "bytes": 20}
    second = await post_json(client, path, {"output": "Done in 3 s"})
    assert (await second.json())["lines"] == 3
    response = await client.get(path, headers=bearer(READ_TOKEN))
    assert response.status == 200 and response.content_type == "text/plain"
    assert await response.text() == "Cloning…\nBuilding\nDone in 3 s\n"
    assert seen == [(dep, ["Cloning…", "Building"]), (dep, ["Done in 3 s"])]


async def test_output_log_errors(client: Client) -> None:
    """404 unknown deployment, 422 JSON without output, 415 odd types, 413 past the limit."""
    dep = await create(client, "api", {"version": "1.0"})
    path = f"/components/api/deployments/{dep}/output"
    await assert_error(await post_json(client, path.replace(dep, "nope"), {"output": "x"}), 404)
    await assert_error(await client.get(path.replace(dep, "nope"), headers=bearer()), 404)
    await assert_error(await post_json(client, path, {"text": "x"}), 422)
    response = await client.post(
        path, data=b"\x00", headers={"Content-Type": "image/png", **bearer()}
    )
    await assert_error(response, 415)
    client.app[OUTPUTS].limit_bytes = 10
    await assert_error(await post_json(client, path, {"output": "0123456789"}), 413)
    assert client.app[OUTPUTS].limit_bytes < MAX_OUTPUT_BYTES
    response = await client.get(path, headers=bearer())
    assert await response.text() == ""


async def test_other_components_stay_out_of_reach(client: Client) -> None:
    """A web-* token can neither change nor read the output of an api deployment."""
    dep = await create(client, "api", {"version": "1.0", "status": "queued"})
    response = await client.delete(f"/components/api/deployments/{dep}", headers=bearer(WEB_TOKEN))
    await assert_error(response, 403)
    response = await client.get(
        f"/components/api/deployments/{dep}/output", headers=bearer(WEB_TOKEN)
    )
    await assert_error(response, 403)
    assert Deployment.model_validate(await get_json(client, f"/components/api/deployments/{dep}"))


async def test_output_as_curl_sends_it(client: Client) -> None:
    """`curl -d '{"output": …}'` is JSON despite its form type; `--data-binary` of a log
    is its text; text/plain is always taken as it is."""
    dep = await create(client, "api", {"version": "1.0"})
    path = f"/components/api/deployments/{dep}/output"
    form = {"Content-Type": "application/x-www-form-urlencoded", **bearer()}
    await client.post(path, data=b'{"output": "from json\\n"}', headers=form)
    await client.post(path, data=b"plain a=b&c\n{not json", headers=form)
    plain = {"Content-Type": "text/plain", **bearer()}
    await client.post(path, data=b'{"output": "kept as is"}', headers=plain)
    response = await client.get(path, headers=bearer())
    assert await response.text() == (
        'from json\nplain a=b&c\n{not json\n{"output": "kept as is"}\n'
    )
