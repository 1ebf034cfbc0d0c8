"""The request examples of the ReleaseBits and Stackify Retrace documents, sent as written
(host and token replaced), against a running relay: status and answer shape.
(Cloud66's and Scalingo's examples are in test_seed_cloud66.py and test_seed_scalingo.py.)"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import ClientResponse
from yarl import URL

from tests.acceptance.api import WIRE_TIME, Client, get_json
from tests.support import CI_TOKEN, RELEASEBITS_FIELDS

# ReleaseBits' `curl -d` example body, as written (curl -d sends it as a form), its
# code name too (the document's "Funky F\u7aefnke" is a mis-decoded "Fünke", kept as is).
RELEASEBITS_JSON = """ {
        "version": "v1.2.3",
        "result": "success",
        "stage": "staging",
        "host": "host.example.com",
        "code_name": "Funky F\u7aefnke",
        "started_at": "2018-05-27T13:15:30.311Z",
        "finished_at": "2018-05-27T13:15:31.191Z",
        "meta_data": {
          "user_id": "metauser",
          "foo": "bar"
        },
        "commit_sha": "b927e3797fc56fb8bc093d59ee7a624dafddadd2",
        "tag": "tag1.2.3",
        "branch": "release" \x20
     } """
# The query-string example exactly as `curl -g` sends it: brackets unencoded.
RELEASEBITS_QUERY = (
    "/components/component-slug/deployments?access_token=some-api-token&version=v1.2.3"
    "&result=success&stage=staging&host=host.example.com&code_name=Funky%20F%C3%BCnke"
    "&started_at=2018-05-27T13%3A15%3A30.311Z&finished_at=2018-05-27T13%3A15%3A31.191Z"
    "&meta_data[user_id]=metauser&meta_data[foo]=bar"
    "&commit_sha=b927e3797fc56fb8bc093d59ee7a624dafddadd2&tag=tag1.2.3&branch=release"
).replace("some-api-token", CI_TOKEN)
LISTED_FIELDS = ["id", "version", "result", "stage", "host", "code_name", "started_at"]


async def _created(response: ClientResponse) -> str:
    assert response.status == 201, await response.text()
    body = await response.json()
    assert list(body) == ["id"]
    return str(uuid.UUID(body["id"]))


async def test_releasebits_authentication_examples(client: Client) -> None:
    """`curl -H "Authorization: some-api-token" /` and `/?access_token=…` are answered
    (200, naming the token); no token is a 401."""
    for response in (
        await client.get("/", headers={"Authorization": CI_TOKEN}),
        await client.get(f"/?access_token={CI_TOKEN}"),
        await client.get("/", headers={"Authorization": f"Bearer {CI_TOKEN}"}),
    ):
        assert response.status == 200
        body = await response.json()
        assert (body["service"], body["token"], body["docs"]) == ("relay", "ci", "/docs")
    assert (await client.get("/")).status == 401


async def test_releasebits_create_examples(client: Client) -> None:
    """The `curl -d` JSON example and the `curl -g` query-string example both answer 201
    `{"id"}` and record every documented field."""
    by_body = await client.post(
        "/components/component-slug/deployments/",
        data=RELEASEBITS_JSON.encode(),
        headers={
            "Authorization": f"Bearer {CI_TOKEN}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    by_query = await client.post(URL(RELEASEBITS_QUERY, encoded=True))
    for record_id, code_name in (
        (await _created(by_body), "Funky F\u7aefnke"),
        (await _created(by_query), "Funky F\u00fcnke"),
    ):
        record = await get_json(client, f"/components/component-slug/deployments/{record_id}")
        for name, value in {**RELEASEBITS_FIELDS, "code_name": code_name}.items():
            assert record[name] == value, name


async def test_releasebits_list_examples(client: Client) -> None:
    """The list examples (bare Authorization header; access_token) answer a JSON array of
    deployments with the documented fields, newest first."""
    for version in ("v1.2.3", "v1.2.4"):
        body = {**json.loads(RELEASEBITS_JSON), "version": version}
        body["finished_at"] = None if version == "v1.2.4" else body["finished_at"]
        response = await client.post(
            "/components/component-slug/deployments",
            json={k: v for k, v in body.items() if v is not None},
            headers={"Authorization": CI_TOKEN},
        )
        assert response.status == 201
    for response in (
        await client.get(
            "/components/component-slug/deployments", headers={"Authorization": CI_TOKEN}
        ),
        await client.get(f"/components/component-slug/deployments?access_token={CI_TOKEN}"),
    ):
        assert response.status == 200
        listed = await response.json()
        assert [d["version"] for d in listed] == ["v1.2.4", "v1.2.3"]
        for item in listed:
            assert all(name in item for name in LISTED_FIELDS)
            assert item["meta_data"] == {"user_id": "metauser", "foo": "bar"}
            assert WIRE_TIME.match(item["finished_at"])


# Retrace: the documented curl bodies (both versions of the document send the same ones).
START = """{
        "Name": "BourneAgain",
        "Uri": "localhost",
        "Branch": "master",
        "Commit": "rOapzPyAtzUR9s7yDJYlGz2vUYbcl0P6gMVglrygJ2",
        "Version": "v1.0",
        "AppName": "FooApp",
        "EnvironmentName": "Prod"
}"""
SHORT = """{
        "Version": "v1.0",
        "AppName": "FooApp",
        "EnvironmentName": "Prod"
}"""


def _powershell(**fields: str) -> str:
    """The body the documented stackify-deploy.ps1 sends: ConvertTo-Json of its hashtable."""
    return json.dumps(fields, indent=4)


async def _retrace(client: Client, command: str, body: str, lower: bool = True) -> Any:
    # curl's examples write the headers in lowercase; PowerShell's Invoke-WebRequest not.
    headers = (
        {"authorization": f"ApiKey {CI_TOKEN}", "content-type": "application/json"}
        if lower
        else {"Authorization": f"ApiKey {CI_TOKEN}", "Content-Type": "application/json"}
    )
    response = await client.post(f"/api/v1/deployments/{command}", data=body, headers=headers)
    assert response.status == (201 if command == "start" else 200), await response.text()
    return await response.json()


async def test_retrace_curl_examples(client: Client) -> None:
    """Start (full body), then Deployment Completed; start again, then Cancel: each answers
    the deployment in its new status."""
    started = await _retrace(client, "start", START)
    assert (started["component"], started["stage"], started["status"]) == (
        "fooapp",
        "Prod",
        "building",
    )
    assert (started["code_name"], started["branch"]) == ("BourneAgain", "master")
    done = await _retrace(client, "complete", SHORT)
    assert (done["id"], done["status"]) == (started["id"], "success")
    again = await _retrace(client, "start", START)
    cancelled = await _retrace(client, "cancel", SHORT)
    assert (cancelled["id"], cancelled["status"]) == (again["id"], "aborted")


async def test_retrace_powershell_examples(client: Client) -> None:
    """The PowerShell script's start, complete (short and full) and cancel bodies work."""
    full = {
        "Version": "v1.0",
        "AppName": "FooApp",
        "EnvironmentName": "Prod",
        "Name": "BourneAgain",
        "Branch": "master",
        "Commit": "ca35857d2cc6050a2525491840922a6d5d359006",
        "Uri": "localhost",
    }
    short = {"Version": "v1.0", "AppName": "FooApp", "EnvironmentName": "Prod"}
    started = await _retrace(client, "start", _powershell(**full), lower=False)
    assert started["commit_sha"] == full["Commit"]
    # `complete` without -name: the script sets Name to the version.
    done = await _retrace(client, "complete", _powershell(**short, Name="v1.0"), lower=False)
    assert (done["id"], done["status"]) == (started["id"], "success")
    await _retrace(client, "start", _powershell(**full), lower=False)
    cancelled = await _retrace(client, "cancel", _powershell(**short), lower=False)
    assert cancelled["status"] == "aborted"
    await _retrace(client, "start", _powershell(**full), lower=False)
    finished = await _retrace(client, "complete", _powershell(**full), lower=False)
    assert finished["status"] == "success"
