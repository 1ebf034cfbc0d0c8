"""The Retrace dialect on a running relay: start, complete and cancel sequences, with the
bodies of Stackify's documentation and `Authorization: ApiKey <token>`."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import ClientResponse

from relay.api.keys import STORE
from tests.acceptance.api import WIRE_TIME, Client, assert_error, bearer, get_json
from tests.acceptance.conftest import MakeClient
from tests.support import ADMIN_TOKEN, CI_TOKEN, READ_TOKEN

# The bodies of Retrace's documented curl examples: full for start, minimal for the rest.
FULL = {
    "Name": "BourneAgain",
    "Uri": "localhost",
    "Branch": "master",
    "Commit": "rOapzPyAtzUR9s7yDJYlGz2vUYbcl0P6gMVglrygJ2",
    "Version": "v1.0",
    "AppName": "FooApp",
    "EnvironmentName": "Prod",
}
MINIMAL = {"Version": "v1.0", "AppName": "FooApp", "EnvironmentName": "Prod"}


async def retrace(
    client: Client, command: str, body: dict[str, Any], token: str = CI_TOKEN
) -> ClientResponse:
    """POST a Retrace command the way its curl examples do."""
    return await client.post(
        f"/api/v1/deployments/{command}",
        data=json.dumps(body),
        headers={"authorization": f"ApiKey {token}", "content-type": "application/json"},
    )


async def test_start_then_complete(client: Client) -> None:
    """start records a deployment in progress; complete (minimal body) ends it as success."""
    started = await retrace(client, "start", FULL)
    assert started.status == 201, await started.text()
    body = await started.json()
    assert started.headers["Location"] == f"/components/fooapp/deployments/{body['id']}"
    assert (body["component"], body["stage"], body["version"]) == ("fooapp", "Prod", "v1.0")
    assert (body["status"], body["is_deploying"], body["code_name"]) == (
        "building",
        True,
        "BourneAgain",
    )
    assert (body["branch"], body["commit_sha"]) == ("master", FULL["Commit"])
    assert body["meta_data"] == {"AppName": "FooApp", "EnvironmentName": "Prod", "uri": "localhost"}
    assert WIRE_TIME.match(body["started_at"]) and body["finished_at"] is None
    completed = await retrace(client, "complete", MINIMAL)
    assert completed.status == 200, await completed.text()
    done = await completed.json()
    assert (done["id"], done["status"], done["result"], done["is_live"]) == (
        body["id"],
        "success",
        "success",
        True,
    )
    record = await get_json(client, f"/components/fooapp/deployments/{body['id']}")
    assert record["status"] == "success" and WIRE_TIME.match(record["finished_at"])


async def test_start_then_cancel(client: Client) -> None:
    """start (minimal body, Name defaults to Version) then cancel ends it as aborted."""
    started = await retrace(client, "start", MINIMAL)
    assert started.status == 201
    assert (await started.json())["code_name"] == "v1.0"
    cancelled = await retrace(client, "cancel", FULL)
    assert cancelled.status == 200
    assert (await cancelled.json())["status"] == "aborted"


async def test_complete_keeps_the_details_that_start_did_not_send(client: Client) -> None:
    """The documented "Deployment Completed" call with Name, Branch, Commit and Uri fills
    what a bare start left empty, and never overwrites what start sent."""
    started = await retrace(client, "start", MINIMAL)
    assert started.status == 201
    completed = await retrace(client, "complete", {**FULL, "Commit": "ca35857d"})
    assert completed.status == 200, await completed.text()
    done = await completed.json()
    assert (done["code_name"], done["branch"], done["commit_sha"]) == (
        "BourneAgain",
        "master",
        "ca35857d",
    )
    assert done["meta_data"]["uri"] == "localhost"
    again = await retrace(client, "start", FULL)
    assert again.status == 201
    other = {**MINIMAL, "Name": "v1.0", "Branch": "other", "Commit": "0123abcd"}
    finished = await (await retrace(client, "complete", other)).json()
    assert (finished["code_name"], finished["branch"], finished["commit_sha"]) == (
        "BourneAgain",
        "master",
        FULL["Commit"],
    )


async def test_complete_or_cancel_never_started_is_409(client: Client) -> None:
    """Nothing was started with these three values: complete and cancel say so."""
    for command in ("complete", "cancel"):
        error = await assert_error(
            await retrace(client, command, MINIMAL), 409, "deployment_not_started"
        )
        assert "was started" in error["message"] and "start" in error["message"]
    await retrace(client, "start", MINIMAL)
    other_version = {**MINIMAL, "Version": "v2.0"}
    await assert_error(await retrace(client, "complete", other_version), 409)
    other_stage = {**MINIMAL, "EnvironmentName": "QA"}
    await assert_error(await retrace(client, "cancel", other_stage), 409)


async def test_start_while_in_progress_is_409(client: Client) -> None:
    """A second start of the same deployment before it ended is refused."""
    assert (await retrace(client, "start", FULL)).status == 201
    error = await assert_error(await retrace(client, "start", MINIMAL), 409, "invalid_transition")
    assert "already in progress" in error["message"]
    assert error["current_status"] == "building"


async def test_complete_after_cancel_is_409(client: Client) -> None:
    """Once cancelled, the deployment cannot be completed (nor cancelled again)."""
    await retrace(client, "start", MINIMAL)
    assert (await retrace(client, "cancel", MINIMAL)).status == 200
    error = await assert_error(await retrace(client, "complete", MINIMAL), 409)
    assert "cancelled" in error["message"] and error["current_status"] == "aborted"
    error = await assert_error(await retrace(client, "cancel", MINIMAL), 409)
    assert error["allowed_next"] == []


async def test_concurrent_starts_record_one_deployment(client: Client) -> None:
    """Eight identical starts at once (a retried CI step, parallel jobs) record one
    deployment in progress: one 201, the others 409, and complete then ends it."""
    answers = await asyncio.gather(*(retrace(client, "start", MINIMAL) for _ in range(8)))
    assert sorted(a.status for a in answers) == [201] + [409] * 7
    listing = await get_json(client, "/components/fooapp/deployments")
    assert [d["status"] for d in listing] == ["building"]
    other = {**MINIMAL, "AppName": "fooapp"}  # the same name, another spelling
    raced = await asyncio.gather(retrace(client, "start", other), retrace(client, "start", other))
    assert [a.status for a in raced] == [409, 409]
    error = await assert_error(raced[0], 409)
    assert "in progress" in error["message"]
    completed = await retrace(client, "complete", MINIMAL)
    assert completed.status == 200
    again = await retrace(client, "start", MINIMAL)
    assert again.status == 201  # a new deployment once the first one ended


async def test_complete_twice_is_409_and_a_new_start_is_a_new_deployment(client: Client) -> None:
    """After complete, complete again is refused; start again begins a second deployment."""
    first = await (await retrace(client, "start", MINIMAL)).json()
    await retrace(client, "complete", MINIMAL)
    error = await assert_error(await retrace(client, "complete", MINIMAL), 409)
    assert "already completed" in error["message"]
    again = await retrace(client, "start", MINIMAL)
    assert again.status == 201
    second = await again.json()
    assert second["id"] != first["id"]
    done = await (await retrace(client, "complete", MINIMAL)).json()
    assert done["id"] == second["id"]


async def test_bad_bodies_and_tokens(client: Client) -> None:
    """Missing fields → 422; an AppName with no letter or digit → 422; bad token → 401;
    a read-only token → 403."""
    error = await assert_error(await retrace(client, "start", {"AppName": "FooApp"}), 422)
    assert {d["field"] for d in error["details"]} == {"EnvironmentName", "Version"}
    error = await assert_error(
        await retrace(client, "start", {**MINIMAL, "AppName": "-- !! --"}), 422
    )
    assert error["details"][0]["field"] == "AppName" and "-- !! --" in error["message"]
    await assert_error(await retrace(client, "start", MINIMAL, token="wrong-token"), 401)
    await assert_error(await retrace(client, "start", MINIMAL, token=READ_TOKEN), 403)


async def test_events_follow_the_sequence(client: Client) -> None:
    """start → complete records deployment.started then deployment.completed."""
    body = await (await retrace(client, "start", MINIMAL)).json()
    await retrace(client, "complete", MINIMAL)
    rows = await client.app[STORE].events_between(
        datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    )
    assert [(e.type, e.deployment_id) for e in rows] == [
        ("deployment.started", body["id"]),
        ("deployment.completed", body["id"]),
    ]


async def test_names_with_spaces_dots_and_capitals(client: Client) -> None:
    """ "Foo App" to "QA 2" starts, and completes when named in other case; the component
    is the slug foo-app, the stage and the names are kept as first sent."""
    body = {**MINIMAL, "AppName": "Foo App", "EnvironmentName": "QA 2"}
    started = await retrace(client, "start", body)
    assert started.status == 201, await started.text()
    record = await started.json()
    assert started.headers["Location"] == f"/components/foo-app/deployments/{record['id']}"
    assert (record["component"], record["stage"]) == ("foo-app", "QA 2")
    assert record["meta_data"] == {"AppName": "Foo App", "EnvironmentName": "QA 2"}
    shouted = {**MINIMAL, "AppName": "FOO APP", "EnvironmentName": "qa 2"}
    completed = await retrace(client, "complete", shouted)
    assert completed.status == 200, await completed.text()
    assert (await completed.json())["id"] == record["id"]
    listing = await get_json(client, "/components/foo-app/deployments?stage=QA%202")
    assert [(d["id"], d["status"]) for d in listing] == [(record["id"], "success")]


async def test_cyrillic_names_start_and_complete(client: Client) -> None:
    """ "Биллинг" to "Прод" starts (it was a 422) and completes when shouted; its slug is
    one relay's own API reads."""
    body = {**MINIMAL, "AppName": "Биллинг", "EnvironmentName": "Прод"}
    started = await retrace(client, "start", body)
    assert started.status == 201, await started.text()
    record = await started.json()
    shouted = {**MINIMAL, "AppName": "БИЛЛИНГ", "EnvironmentName": "ПРОД"}
    completed = await retrace(client, "complete", shouted)
    assert completed.status == 200, await completed.text()
    assert (await completed.json())["id"] == record["id"]
    listing = await get_json(client, f"/components/{record['component']}/deployments")
    assert [(d["id"], d["stage"]) for d in listing] == [(record["id"], "Прод")]


async def test_windows_powershell_latin1_body_is_read(client: Client) -> None:
    """Windows PowerShell 5.1 sends the script's JSON as ISO-8859-1 (no charset named):
    "München App" / "Funky Fünke" are read as sent; a body that claims UTF-8 and is not
    stays a 400, and a UTF-16 body is still read as JSON."""
    body = {**MINIMAL, "AppName": "München App", "Name": "Funky Fünke"}
    headers = {"authorization": f"ApiKey {CI_TOKEN}", "content-type": "application/json"}
    latin1 = json.dumps(body, ensure_ascii=False).encode("latin-1")
    started = await client.post("/api/v1/deployments/start", data=latin1, headers=headers)
    assert started.status == 201, await started.text()
    record = await started.json()
    assert (record["component"], record["code_name"]) == ("munchen-app", "Funky Fünke")
    assert record["meta_data"]["AppName"] == "München App"
    claimed = {**headers, "content-type": "application/json; charset=utf-8"}
    refused = await client.post("/api/v1/deployments/complete", data=latin1, headers=claimed)
    await assert_error(refused, 400)
    utf16 = json.dumps(body, ensure_ascii=False).encode("utf-16")
    done = await client.post("/api/v1/deployments/complete", data=utf16, headers=headers)
    assert done.status == 200, await done.text()
    assert (await done.json())["id"] == record["id"]


async def test_dotted_name_start_then_cancel_in_other_case(client: Client) -> None:
    """ "Billing.API" is component billing.api; cancel as "billing.api" / "PROD" finds it."""
    body = {**MINIMAL, "AppName": "Billing.API"}
    started = await (await retrace(client, "start", body)).json()
    assert started["component"] == "billing.api"
    lower = {**MINIMAL, "AppName": "billing.api", "EnvironmentName": "PROD"}
    cancelled = await retrace(client, "cancel", lower)
    assert cancelled.status == 200
    assert (await cancelled.json())["status"] == "aborted"


async def test_two_names_for_one_component_are_a_409(client: Client) -> None:
    """ "Foo-App" after "Foo App" would share component foo-app: 409 naming both, and
    nothing is recorded for it."""
    assert (await retrace(client, "start", {**MINIMAL, "AppName": "Foo App"})).status == 201
    error = await assert_error(
        await retrace(client, "start", {**MINIMAL, "AppName": "Foo-App"}), 409, "name_collision"
    )
    assert "'Foo App'" in error["message"] and "'foo-app'" in error["message"]
    listing = await get_json(client, "/components/foo-app/deployments")
    assert len(listing) == 1


async def test_strict_components_refuse_an_unknown_app_and_keep_no_name(
    make_client: MakeClient,
) -> None:
    """With strict_components, an unregistered "Foo App" is a 404, and its name is not
    kept: "Foo-App" can still be registered and used afterwards."""
    client = await make_client(server={"strict_components": True})
    await assert_error(await retrace(client, "start", {**MINIMAL, "AppName": "Foo App"}), 404)
    registered = await client.put("/components/foo-app", headers=bearer(ADMIN_TOKEN))
    assert registered.status == 201
    started = await retrace(client, "start", {**MINIMAL, "AppName": "Foo-App"})
    assert started.status == 201, await started.text()
