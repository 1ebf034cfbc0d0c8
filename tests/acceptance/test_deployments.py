"""Recording deployments as ReleaseBits clients send them, and reading one back."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from yarl import URL

from tests.acceptance.api import (
    WIRE_TIME,
    Client,
    assert_error,
    bearer,
    create,
    get_json,
    post_json,
)
from tests.support import CI_TOKEN, RELEASEBITS_FIELDS

# The ReleaseBits documentation's JSON example, byte for byte (leading/trailing spaces too).
RELEASEBITS_JSON = (
    ' { "version": "v1.2.3", "result": "success", "stage": "staging", '
    '"host": "host.example.com", "code_name": "Funky Fünke", '
    '"started_at": "2018-05-27T13:15:30.311Z", "finished_at": "2018-05-27T13:15:31.191Z", '
    '"meta_data": { "user_id": "metauser", "foo": "bar" }, '
    '"commit_sha": "b927e3797fc56fb8bc093d59ee7a624dafddadd2", "tag": "tag1.2.3", '
    '"branch": "release" } '
)

# Its "form" variant: every field in the query string, percent-encoded as curl sends it.
RELEASEBITS_QUERY = (
    "version=v1.2.3&result=success&stage=staging&host=host.example.com"
    "&code_name=Funky%20F%C3%BCnke&started_at=2018-05-27T13:15:30.311Z"
    "&finished_at=2018-05-27T13:15:31.191Z&meta_data[user_id]=metauser&meta_data[foo]=bar"
    "&commit_sha=b927e3797fc56fb8bc093d59ee7a624dafddadd2&tag=tag1.2.3&branch=release"
)

FORM_PAIRS = [(k, v) for k, v in RELEASEBITS_FIELDS.items() if k != "meta_data"] + [
    ("meta_data[user_id]", "metauser"),
    ("meta_data[foo]", "bar"),
]


async def _created(response: aiohttp.ClientResponse, component: str) -> str:
    text = await response.text()
    assert response.status == 201, text
    body = json.loads(text)
    assert list(body) == ["id"]
    record_id: str = body["id"]
    assert str(uuid.UUID(record_id)) == record_id
    assert response.headers["Location"] == f"/components/{component}/deployments/{record_id}"
    return record_id


async def _assert_releasebits_record(client: Client, record_id: str) -> None:
    record = await get_json(client, f"/components/component-slug/deployments/{record_id}")
    for name, value in RELEASEBITS_FIELDS.items():
        assert record[name] == value, name
    assert record["id"] == record_id
    assert record["component"] == "component-slug"
    assert record["kind"] == "deployment"
    assert record["status"] == "success"
    assert record["triggered_by"] == "ci"
    assert record["deliveries"] == []
    for name in ("started_at", "finished_at", "created_at", "updated_at"):
        assert WIRE_TIME.match(record[name]), (name, record[name])


async def test_releasebits_json_example_sent_by_curl_d(client: Client) -> None:
    """The documented `curl -d` JSON example (form content type, trailing slash) is recorded."""
    response = await client.post(
        "/components/component-slug/deployments/",
        data=RELEASEBITS_JSON.encode(),
        headers={
            "Authorization": "Bearer some-api-token",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    record_id = await _created(response, "component-slug")
    await _assert_releasebits_record(client, record_id)


@pytest.mark.parametrize(
    "path", ["/components/component-slug/deployments", "/components/component-slug/deployments/"]
)
async def test_releasebits_query_string_example(client: Client, path: str) -> None:
    """The documented form variant — every field in the query string, no body — is recorded."""
    url = URL(f"{path}?{RELEASEBITS_QUERY}&access_token={CI_TOKEN}", encoded=True)
    response = await client.post(url)
    record_id = await _created(response, "component-slug")
    await _assert_releasebits_record(client, record_id)


async def test_form_urlencoded_body(client: Client) -> None:
    """A real application/x-www-form-urlencoded body with meta_data[k] keys is recorded."""
    response = await client.post(
        "/components/component-slug/deployments", data=FORM_PAIRS, headers=bearer()
    )
    assert response.request_info.headers["Content-Type"] == "application/x-www-form-urlencoded"
    record_id = await _created(response, "component-slug")
    await _assert_releasebits_record(client, record_id)


async def test_multipart_form_body(client: Client) -> None:
    """A multipart/form-data body (what `curl -F` sends) is recorded like a form."""
    form = aiohttp.FormData(FORM_PAIRS, default_to_multipart=True)
    response = await client.post(
        "/components/component-slug/deployments", data=form, headers=bearer()
    )
    assert response.request_info.headers["Content-Type"].startswith("multipart/form-data")
    record_id = await _created(response, "component-slug")
    await _assert_releasebits_record(client, record_id)


async def test_location_header_leads_to_the_record(client: Client) -> None:
    """Following the Location of a 201 returns the recorded deployment."""
    response = await post_json(client, "/components/api/deployments", {"version": "v9"})
    record = await get_json(client, response.headers["Location"])
    assert (record["id"], record["version"]) == ((await response.json())["id"], "v9")


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2018-05-27T15:15:30.311+02:00", "2018-05-27T13:15:30.311Z"),
        ("2018-05-27T09:15:30.311-04:00", "2018-05-27T13:15:30.311Z"),
        ("2018-05-27T13:15:30.311", "2018-05-27T13:15:30.311Z"),
        ("2018-05-27T13:15:30.311123Z", "2018-05-27T13:15:30.311Z"),
    ],
)
async def test_timestamps_come_back_in_utc(client: Client, sent: str, stored: str) -> None:
    """Timestamps with offsets (or none) are answered as the same instant in UTC with a Z."""
    record_id = await create(
        client, "api", {"version": "v1", "started_at": sent, "finished_at": sent}
    )
    record = await get_json(client, f"/components/api/deployments/{record_id}")
    assert (record["started_at"], record["finished_at"]) == (stored, stored)


async def test_query_string_offset_with_unencoded_plus(client: Client) -> None:
    """`started_at=...+02:00` typed unencoded in a query string keeps its offset."""
    url = URL(
        "/components/api/deployments?version=v1&started_at=2018-05-27T15:15:30.311+02:00",
        encoded=True,
    )
    response = await client.post(url, headers=bearer())
    record_id = (await response.json())["id"]
    record = await get_json(client, f"/components/api/deployments/{record_id}")
    assert record["started_at"] == "2018-05-27T13:15:30.311Z"


async def test_form_body_offset_with_unencoded_plus(client: Client) -> None:
    """`curl -d 'started_at=...+02:00'` (a raw + in a form body) keeps its offset."""
    response = await client.post(
        "/components/api/deployments",
        data=b"version=v1&started_at=2018-05-27T15:15:30.311+02:00",
        headers={**bearer(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    record_id = (await response.json())["id"]
    record = await get_json(client, f"/components/api/deployments/{record_id}")
    assert record["started_at"] == "2018-05-27T13:15:30.311Z"


async def test_finished_at_defaults_to_now(client: Client) -> None:
    """A deployment sent without finished_at finished when relay received it."""
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    record_id = await create(client, "api", {"version": "v1"})
    after = datetime.now(UTC)
    record = await get_json(client, f"/components/api/deployments/{record_id}")
    finished = datetime.fromisoformat(record["finished_at"].replace("Z", "+00:00"))
    assert before <= finished <= after
    assert record["started_at"] is None
    assert record["finished_at"] == record["created_at"]


async def test_result_decides_the_status(client: Client) -> None:
    """result=failure records a build-error deployment; no result means success."""
    failed = await create(client, "api", {"version": "v1", "result": "failure"})
    plain = await create(client, "api", {"version": "v2"})
    assert (await get_json(client, f"/components/api/deployments/{failed}"))["status"] == (
        "build-error"
    )
    assert (await get_json(client, f"/components/api/deployments/{plain}"))["status"] == "success"


async def test_unknown_fields_are_reported_as_warnings(client: Client) -> None:
    """Unknown fields are ignored, and the 201 lists them in `warnings`."""
    response = await post_json(
        client,
        "/components/api/deployments",
        {"version": "v1", "environment": "prod", "deployer": "me"},
    )
    assert response.status == 201
    body = await response.json()
    assert body["warnings"] == [
        "unknown field 'deployer' was ignored",
        "unknown field 'environment' was ignored",
    ]
    record = await get_json(client, f"/components/api/deployments/{body['id']}")
    assert "environment" not in record and "deployer" not in record


async def test_get_unknown_id_is_404(client: Client) -> None:
    """Asking for a deployment id that does not exist answers 404 JSON."""
    await create(client, "api", {"version": "v1"})
    response = await client.get(f"/components/api/deployments/{uuid.uuid4()}", headers=bearer())
    await assert_error(response, 404, "not_found")


async def test_get_under_another_component_is_404(client: Client) -> None:
    """A deployment is only found under its own component."""
    record_id = await create(client, "api", {"version": "v1"})
    response = await client.get(f"/components/web/deployments/{record_id}", headers=bearer())
    await assert_error(response, 404, "not_found")


async def test_concurrent_posts_are_all_recorded(client: Client) -> None:
    """50 deployments sent at once are all acknowledged and all listed."""
    responses = await asyncio.gather(
        *(post_json(client, "/components/api/deployments", {"version": f"v{i}"}) for i in range(50))
    )
    assert [r.status for r in responses] == [201] * 50
    ids = {(await r.json())["id"] for r in responses}
    listed = await get_json(client, "/components/api/deployments?limit=500")
    assert {d["id"] for d in listed} == ids


# --- Idempotency-Key -------------------------------------------------------------------


async def _count(client: Client, component: str = "api") -> int:
    return len(await get_json(client, f"/components/{component}/deployments?limit=500"))


async def test_idempotent_repeat_returns_the_same_answer(client: Client) -> None:
    """Same key and body: the same id and Location, Idempotent-Replayed: true, nothing new."""
    key = {"Idempotency-Key": "deploy-42"}
    first = await post_json(client, "/components/api/deployments", {"version": "v1"}, headers=key)
    again = await post_json(client, "/components/api/deployments", {"version": "v1"}, headers=key)
    assert (first.status, again.status) == (201, 201)
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.json() == await first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert await _count(client) == 1


async def test_idempotent_repeat_ignores_formatting(client: Client) -> None:
    """The same fields with other key order and spacing count as the same request."""
    key = {"Idempotency-Key": "deploy-43", "Content-Type": "application/json", **bearer()}
    first = await client.post(
        "/components/api/deployments", data='{"version":"v1","stage":"prod"}', headers=key
    )
    again = await client.post(
        "/components/api/deployments", data=' { "stage": "prod",  "version": "v1" } ', headers=key
    )
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (await again.json())["id"] == (await first.json())["id"]


async def test_idempotency_key_with_another_body_is_409(client: Client) -> None:
    """Reusing a key with a different body answers 409 and records nothing."""
    key = {"Idempotency-Key": "deploy-44"}
    await post_json(client, "/components/api/deployments", {"version": "v1"}, headers=key)
    response = await post_json(
        client, "/components/api/deployments", {"version": "v2"}, headers=key
    )
    await assert_error(response, 409, "idempotency_key_reused")
    assert await _count(client) == 1


async def test_simultaneous_idempotent_requests_record_once(client: Client) -> None:
    """Five identical requests with one key sent at once record one deployment."""
    key = {"Idempotency-Key": "deploy-45"}
    responses = await asyncio.gather(
        *(
            post_json(client, "/components/api/deployments", {"version": "v1"}, headers=key)
            for _ in range(5)
        )
    )
    assert [r.status for r in responses] == [201] * 5
    assert len({(await r.json())["id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 4
    assert await _count(client) == 1


async def test_overlong_idempotency_key_is_422(client: Client) -> None:
    """An Idempotency-Key longer than 255 characters is refused, naming the header."""
    response = await post_json(
        client,
        "/components/api/deployments",
        {"version": "v1"},
        headers={"Idempotency-Key": "k" * 256},
    )
    error = await assert_error(response, 422, "validation_error")
    assert [d["field"] for d in error["details"]] == ["Idempotency-Key"]
    assert await _count(client) == 0
