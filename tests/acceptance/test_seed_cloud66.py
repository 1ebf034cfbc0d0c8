"""Every request example of Cloud66's deployments API document (v3), as its curl commands
send them (host and token replaced), against a running relay: status and shape."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import ClientResponse

from tests.acceptance.api import Client, assert_error, create, get_json, post_json
from tests.support import CI_TOKEN, READ_TOKEN

STACK = "5999b763474b0eafa5fafb64bff0ba80"
# The headers of every example: `-H "Authorization: Bearer …" -H "Content-Type: …"`.
HEADERS = {"Authorization": f"Bearer {CI_TOKEN}", "Content-Type": "application/json"}
POST_QUERY = (
    "git_ref=a_git_tag_or_hash&services=service1:image_tagA,service2:image_tagB"
    "&deployment_profile=my-deploy-profile-name&user_reference=useful-reference-123"
)
POST_BODY = '{\n  "stack_id": "5999b763474b0eafa5fafb64bff0ba80"\n}'
SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
# Every field of the document's deployment example, in its order.
FIELDS = [
    "id",
    "triggered_by",
    "triggered_via",
    "started_at",
    "finished_at",
    "outcome",
    "git_hash",
    "deploy_session",
    "deploy_type",
    "is_head",
    "is_live",
    "reverted",
    "reverted_by",
    "reverted_at",
    "is_deploying",
    "commit_url",
]
SHA = "5675fcd8f9e6dc534ecf1410c0661c066097e310"


async def _send(client: Client, method: str, path: str, body: str | None = None) -> Any:
    response: ClientResponse = await client.request(
        method, f"/api/3{path}", data=body, headers=HEADERS
    )
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


async def _finished(client: Client) -> str:
    """A successful deployment of the stack, recorded with relay's own API."""
    return await create(
        client,
        STACK,
        {
            "version": "v1",
            "commit_sha": SHA,
            "meta_data": {
                "email": "test@cloud66.com",
                "commit_url": f"https://github.com/cloud66-samples/rails-test/commit/{SHA}",
            },
            "started_at": "2014-08-29T17:46:16Z",
            "finished_at": "2014-08-29T17:58:23Z",
        },
    )


def _assert_example_shape(view: dict[str, Any]) -> None:
    assert list(view) == FIELDS
    assert isinstance(view["id"], int)
    for coded in ("triggered_via", "outcome", "deploy_type"):
        assert set(view[coded]) == {"code", "meaning"}
        assert isinstance(view[coded]["code"], int) and isinstance(view[coded]["meaning"], str)


async def test_get_a_deployment_example(client: Client) -> None:
    """GET …/deployments/:deployment_id answers the document's example shape, field by field."""
    relay_id = await _finished(client)
    number = (await get_json(client, f"/components/{STACK}/deployments/{relay_id}"))["number"]
    body = await _send(client, "GET", f"/stacks/{STACK}/deployments/{number}")
    assert list(body) == ["response"]
    view = body["response"]
    _assert_example_shape(view)
    assert view == {
        "id": number,
        "triggered_by": "test@cloud66.com",
        "triggered_via": {"code": 1, "meaning": "api"},
        "started_at": "2014-08-29T17:46:16Z",
        "finished_at": "2014-08-29T17:58:23Z",
        "outcome": {"code": 1, "meaning": "success"},
        "git_hash": SHA,
        "deploy_session": relay_id,
        "deploy_type": {"code": 0, "meaning": "build"},
        "is_head": True,
        "is_live": True,
        "reverted": None,
        "reverted_by": None,
        "reverted_at": None,
        "is_deploying": False,
        "commit_url": f"https://github.com/cloud66-samples/rails-test/commit/{SHA}",
    }


async def test_list_deployments_example(client: Client) -> None:
    """GET …/deployments answers response, count and the pagination block of the document."""
    await _finished(client)
    body = await _send(client, "GET", f"/stacks/{STACK}/deployments")
    assert list(body) == ["response", "count", "pagination"]
    assert len(body["response"]) == 1 and body["count"] == 1
    _assert_example_shape(body["response"][0])
    assert body["pagination"] == {
        "previous": None,
        "next": None,
        "current": 1,
        "per_page": 30,
        "count": 1,
        "pages": 1,
    }


async def test_list_pages_newest_first(client: Client) -> None:
    """page/per_page walk the stack's deployments newest first; the block says where."""
    for n in range(5):
        await create(client, STACK, {"version": f"v{n}"})
    body = await _send(client, "GET", f"/stacks/{STACK}/deployments?page=2&per_page=2")
    assert body["pagination"] == {
        "previous": 1,
        "next": 3,
        "current": 2,
        "per_page": 2,
        "count": 5,
        "pages": 3,
    }
    ids = [d["id"] for d in body["response"]]
    assert len(ids) == 2 and ids[0] > ids[1]
    last = await _send(client, "GET", f"/stacks/{STACK}/deployments?page=3&per_page=2")
    assert len(last["response"]) == 1 and last["pagination"]["next"] is None
    assert last["response"][0]["is_head"] is False


async def test_post_redeploy_example_records_a_queued_deployment(client: Client) -> None:
    """The POST example (query parameters and its JSON body) records a queued deployment
    and answers its integer id; the parameters land in relay's fields."""
    body = await _send(client, "POST", f"/stacks/{STACK}/deployments?{POST_QUERY}", POST_BODY)
    assert body == {
        "response": {
            "id": body["response"]["id"],
            "message": "Deployment scheduled",
            "queued": True,
        }
    }
    number = body["response"]["id"]
    assert isinstance(number, int)
    view = (await _send(client, "GET", f"/stacks/{STACK}/deployments/{number}"))["response"]
    assert view["outcome"] == {"code": 0, "meaning": "in progress"}
    assert view["is_deploying"] is True and view["finished_at"] is None
    assert SECONDS.match(view["started_at"])
    record = await get_json(client, f"/components/{STACK}/deployments/{view['deploy_session']}")
    assert (record["status"], record["version"], record["number"]) == (
        "queued",
        "a_git_tag_or_hash",
        number,
    )
    assert record["meta_data"] == {
        "git_ref": "a_git_tag_or_hash",
        "services": "service1:image_tagA,service2:image_tagB",
        "deployment_profile": "my-deploy-profile-name",
        "user_reference": "useful-reference-123",
        "triggered_via": "api",
    }


async def test_delete_cancel_example(client: Client) -> None:
    """The DELETE example cancels a deployment in progress: the document's answer, and
    the deployment is aborted (a second cancel is a 409)."""
    posted = await _send(client, "POST", f"/stacks/{STACK}/deployments?git_ref=abc1234", "")
    number = posted["response"]["id"]
    body = await _send(client, "DELETE", f"/stacks/{STACK}/deployments/{number}")
    assert body == {"response": {"ok": True, "message": "Deployment cancelled"}}
    view = (await _send(client, "GET", f"/stacks/{STACK}/deployments/{number}"))["response"]
    assert view["outcome"] == {"code": 3, "meaning": "cancelled"}
    assert view["git_hash"] == "abc1234"
    again = await client.delete(f"/api/3/stacks/{STACK}/deployments/{number}", headers=HEADERS)
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "invalid_transition"


async def test_unknown_or_foreign_ids_are_404(client: Client) -> None:
    """An id that is no integer, or another stack's, is a JSON 404."""
    relay_id = await _finished(client)
    number = (await get_json(client, f"/components/{STACK}/deployments/{relay_id}"))["number"]
    for path in (
        f"/api/3/stacks/other/deployments/{number}",
        f"/api/3/stacks/{STACK}/deployments/{relay_id}",
        f"/api/3/stacks/{STACK}/deployments/0",
        f"/api/3/stacks/{STACK}/deployments/{number + 1000}",
    ):
        response = await client.get(path, headers=HEADERS)
        assert response.status == 404, path
        assert (await response.json())["error"]["code"] == "not_found"
    for bad in ("0", "-1", "1" * 19, "abc"):
        response = await client.get(f"/api/3/stacks/{STACK}/deployments/{bad}", headers=HEADERS)
        message = (await assert_error(response, 404))["message"]
        assert "whole numbers from 1" in message and "18 digits" in message, bad


async def test_a_read_token_cannot_deploy_and_bad_params_are_422(client: Client) -> None:
    """Writing needs events:write (403); a user_reference past 255 characters is a 422."""
    denied = await client.post(
        f"/api/3/stacks/{STACK}/deployments?git_ref=x",
        headers={"Authorization": f"Bearer {READ_TOKEN}"},
    )
    assert denied.status == 403
    too_long = await client.post(
        f"/api/3/stacks/{STACK}/deployments?user_reference={'x' * 256}", headers=HEADERS
    )
    assert too_long.status == 422
    assert (await too_long.json())["error"]["message"] == "invalid query parameters"
    details = (await too_long.json())["error"]["details"]
    assert details[0]["field"] == "user_reference"
    bad_page = await client.get(f"/api/3/stacks/{STACK}/deployments?page=0", headers=HEADERS)
    assert bad_page.status == 422


async def test_numbers_show_in_relays_own_answers(client: Client) -> None:
    """relay's own listing shows each deployment's number, increasing with arrival."""
    first = await create(client, STACK, {"version": "a"})
    second = await post_json(client, f"/components/{STACK}/deployments", {"version": "b"})
    listing = await get_json(client, f"/components/{STACK}/deployments")
    numbers = {d["id"]: d["number"] for d in listing}
    assert numbers[(await second.json())["id"]] > numbers[first] >= 1
    assert json.dumps(listing).count('"number"') == 2


async def test_a_nul_in_a_query_parameter_is_a_400_and_records_nothing(client: Client) -> None:
    """A NUL character in git_ref (or any parameter) is refused as relay's own API
    refuses it in a field (400), instead of being stored as the version."""
    for query in ("git_ref=%00bad", "git_ref=v1&user_reference=ref%00"):
        response = await client.post(f"/api/3/stacks/{STACK}/deployments?{query}", headers=HEADERS)
        assert response.status == 400, query
        assert (await response.json())["error"]["code"] == "malformed_body"
    listed = await _send(client, "GET", f"/stacks/{STACK}/deployments")
    assert listed["count"] == 0
