"""New Relic forwarder: NerdGraph and REST request builders, error classification, send()."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from forwarders.base import Delivered, Event, PermanentFailure, RetryLater, Skipped
from forwarders.common import summary
from forwarders.newrelic import (
    MAX_REST_TEXT,
    MUTATION,
    NewRelicConfig,
    NewRelicForwarder,
    build_nerdgraph_request,
    build_rest_request,
    check_nerdgraph_answer,
    deployment_type,
    refused_timestamp,
    rest_text,
)
from relay.delivery.http import USER_AGENT, HttpResponse
from tests.forwarder_support import NOW, deployment_event, mock_context, raising, requests_of

KEY = "NRAK-SECRETSECRETSECRET"
GUID = "MTIzNDU2fEFQTXxBUFBMSUNBVElPTnwx"
FINISHED_MS = int(datetime(2024, 5, 1, 11, 55, tzinfo=UTC).timestamp() * 1000)


def make_config(**overrides: Any) -> NewRelicConfig:
    """A valid NerdGraph config with `overrides` applied."""
    values = {"name": "nr", "type": "newrelic", "api_key": KEY, "entity_guid": GUID}
    return NewRelicConfig.model_validate({**values, **overrides})


def rest_config(**overrides: Any) -> NewRelicConfig:
    """A valid REST config."""
    return make_config(api="rest", entity_guid=None, app_id=1234, **overrides)


def make_event(event_type: str = "deployment.completed", **data: Any) -> Event:
    """A successful production deployment by alice; `data` overrides fields."""
    return deployment_event(event_type, **{"meta_data": {"user_id": "alice"}, **data})


def graphql_answer(body: dict[str, Any], status: int = 200) -> HttpResponse:
    """A NerdGraph HTTP answer with `body`."""
    return HttpResponse(status, {"Content-Type": "application/json"}, json.dumps(body).encode())


CREATED = graphql_answer(
    {"data": {"changeTrackingCreateDeployment": {"deploymentId": "d-1", "entityGuid": GUID}}}
)


def test_nerdgraph_request_maps_the_deployment() -> None:
    """The mutation goes to {url}/graphql with API-Key and the mapped input."""
    request = build_nerdgraph_request(make_config(), make_event(), NOW, "del-1")
    assert request.url == "https://api.newrelic.com/graphql"
    assert request.headers["API-Key"] == KEY
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["Idempotency-Key"] == "del-1"
    body = request.json()
    assert body["query"] == MUTATION
    assert "changeTrackingCreateDeployment(deployment: $deployment)" in body["query"]
    assert body["variables"]["deployment"] == {
        "entityGuid": GUID,
        "version": "1.2.3",
        "commit": "0123456789abcdef",
        "user": "alice",
        "deploymentType": "BASIC",
        "timestamp": FINISHED_MS,
        "description": "Deploy web 1.2.3 to production: success (0123456 on main)",
    }


def test_region_and_url_override_choose_the_host() -> None:
    """EU region uses the EU host; `url` overrides both."""
    eu = build_nerdgraph_request(make_config(region="eu"), make_event(), NOW, "d")
    custom = build_nerdgraph_request(make_config(url="http://nr.test/"), make_event(), NOW, "d")
    assert eu.url == "https://api.eu.newrelic.com/graphql"
    assert custom.url == "http://nr.test/graphql"


def test_old_event_omits_timestamp_and_describes_the_time() -> None:
    """An event older than 24 h is sent without timestamp, the time in the description."""
    later = NOW + timedelta(days=2)
    deployment = build_nerdgraph_request(make_config(), make_event(), later, "d").json()
    sent = deployment["variables"]["deployment"]
    assert "timestamp" not in sent
    assert sent["description"].endswith("; deployed at 2024-05-01T11:55:00.000Z")


def test_recent_event_just_inside_the_window_keeps_timestamp() -> None:
    """An event 23 h old keeps its timestamp."""
    later = NOW + timedelta(hours=23)
    sent = build_nerdgraph_request(make_config(), make_event(), later, "d").json()
    assert sent["variables"]["deployment"]["timestamp"] == FINISHED_MS


def test_meta_data_supplies_changelog_deep_link_and_type() -> None:
    """changelog, deep link and a valid deployment type come from meta_data."""
    meta = {"changelog": "fixes", "deep_link": "https://ci/1", "deployment_type": "blue-green"}
    sent = build_nerdgraph_request(make_config(), make_event(meta_data=meta), NOW, "d").json()
    deployment = sent["variables"]["deployment"]
    assert (deployment["changelog"], deployment["deepLink"]) == ("fixes", "https://ci/1")
    assert deployment["deploymentType"] == "BLUE_GREEN"
    assert "user" not in deployment


@pytest.mark.parametrize(
    ("value", "expected"), [("CANARY", "CANARY"), ("weird", "BASIC"), (3, "BASIC")]
)
def test_deployment_type_falls_back_to_basic(value: Any, expected: str) -> None:
    """Only NerdGraph's enum values pass; anything else becomes BASIC."""
    assert deployment_type({"meta_data": {"deployment_type": value}}) == expected


def test_summary_without_optional_fields() -> None:
    """The summary of a bare deployment is component, version and status."""
    bare = {"component": "api", "version": "7", "status": "success"}
    assert summary(Event("e", "deployment.completed", NOW, bare)) == "Deploy api 7: success"


def test_summary_names_commit_branch_and_host() -> None:
    """Result, short commit, branch and host all make it into the one-line description."""
    event = make_event(result="failure", status="crashed-error", host="web-1", branch="x\ny")
    sent = build_rest_request(rest_config(), event, NOW, "d").json()["deployment"]
    expected = "Deploy web 1.2.3 to production: failure (0123456 on x y, host web-1)"
    assert sent["description"] == expected


def test_rest_request_maps_the_marker() -> None:
    """REST posts revision, description, user and an ISO timestamp with X-Api-Key."""
    request = build_rest_request(rest_config(), make_event(), NOW, "del-1")
    assert request.url == "https://api.newrelic.com/v2/applications/1234/deployments.json"
    assert request.headers["X-Api-Key"] == KEY
    assert "Api-Key" not in request.headers
    assert request.json() == {
        "deployment": {
            "revision": "1.2.3",
            "description": "Deploy web 1.2.3 to production: success (0123456 on main)",
            "user": "alice",
            "timestamp": "2024-05-01T11:55:00Z",
        }
    }


def test_rest_request_truncates_and_clamps() -> None:
    """Revision is cut to 127, user to 31, and a future timestamp to now."""
    event = make_event(
        version="v" * 150,
        finished_at="2024-05-01T13:00:00.000Z",
        meta_data={"user_id": "u" * 40, "changelog": "c"},
    )
    sent = build_rest_request(rest_config(), event, NOW, "d").json()["deployment"]
    assert sent["revision"] == "v" * 127
    assert sent["user"] == "u" * 31
    assert sent["timestamp"] == "2024-05-01T12:00:00Z"
    assert sent["changelog"] == "c"


def test_config_cross_field_rules() -> None:
    """NerdGraph needs entity_guid, REST needs app_id; the key is a listed secret."""
    with pytest.raises(ValidationError, match="entity_guid"):
        make_config(entity_guid=None)
    with pytest.raises(ValidationError, match="app_id"):
        make_config(api="rest")
    with pytest.raises(ValidationError):
        make_config(region="ap")


def test_concurrency_stays_within_new_relics_limit_per_key() -> None:
    """New Relic answers 429 beyond 25 requests in flight per key: more is a config error."""
    assert make_config(concurrency=25).concurrency == 25
    with pytest.raises(ValidationError, match="may not exceed 25"):
        make_config(concurrency=26)
    assert make_config().secrets() == [KEY]
    assert KEY not in repr(make_config())


@pytest.mark.parametrize(
    "event",
    [
        make_event("deployment.started", status="building"),
        make_event("deployment.cancelled", status="aborted"),
        make_event("build.created", kind="build"),
        make_event("release.created"),
        make_event("deployment.completed", status="crashed-error"),
    ],
)
async def test_other_events_are_skipped(event: Event) -> None:
    """Only successful created/completed deployments are sent."""
    context = mock_context(lambda r: CREATED)
    assert isinstance(await NewRelicForwarder(make_config()).send(event, context), Skipped)
    assert requests_of(context) == []


async def test_nerdgraph_send_delivers() -> None:
    """A created deployment is Delivered with its id."""
    context = mock_context(lambda r: CREATED)
    outcome = await NewRelicForwarder(make_config()).send(make_event("deployment.created"), context)
    assert outcome == Delivered(status_code=200, excerpt="deploymentId d-1")


@pytest.mark.parametrize(
    "error",
    [
        {"message": "x", "extensions": {"errorClass": "TIMEOUT"}},
        {"message": "x", "extensions": {"errorClass": "INTERNAL_SERVER_ERROR"}},
        {"message": "x", "extensions": {"errorClass": "SERVER_ERROR"}},
        {"message": "x", "extensions": {"errorClass": "TOO_MANY_REQUESTS"}},
    ],
)
def test_transient_graphql_errors_retry(error: dict[str, Any]) -> None:
    """HTTP 200 with a timeout, internal-error or rate-limit error class is retried."""
    with pytest.raises(RetryLater):
        check_nerdgraph_answer(graphql_answer({"errors": [error]}), NOW)


def test_error_class_decides_not_the_message() -> None:
    """Like New Relic's own client, only the errorClass makes an error transient."""
    body = {"errors": [{"message": "Invalid timeout", "extensions": {"errorClass": "BAD_INPUT"}}]}
    with pytest.raises(PermanentFailure):
        check_nerdgraph_answer(graphql_answer(body), NOW)


def test_other_graphql_errors_are_permanent_with_message() -> None:
    """Any other GraphQL error is permanent and carries the service's message."""
    body = {"errors": [{"message": "Entity not found", "extensions": {"errorClass": "NOT_FOUND"}}]}
    with pytest.raises(PermanentFailure, match="Entity not found"):
        check_nerdgraph_answer(graphql_answer(body), NOW)


def test_answer_without_deployment_id_is_permanent() -> None:
    """A 200 with neither errors nor a deployment id is not taken as success."""
    with pytest.raises(PermanentFailure):
        check_nerdgraph_answer(graphql_answer({"data": {}}), NOW)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, RetryLater),
        (500, RetryLater),
        (503, RetryLater),
        (401, PermanentFailure),
        (408, PermanentFailure),
    ],
)
async def test_nerdgraph_http_statuses(status: int, kind: type[Exception]) -> None:
    """HTTP 429/5xx retry, any other status (401, 408) is permanent, and the key never
    shows in the reason."""
    context = mock_context(lambda r: graphql_answer({"errors": [{"message": "no"}]}, status))
    with pytest.raises(kind) as caught:
        await NewRelicForwarder(make_config()).send(make_event(), context)
    assert KEY not in str(caught.value)


async def test_rest_send_delivers_on_201() -> None:
    """REST 201 is Delivered."""
    context = mock_context(lambda r: HttpResponse(201, {}, b'{"deployment": {"id": 1}}'))
    outcome = await NewRelicForwarder(rest_config()).send(make_event(), context)
    assert isinstance(outcome, Delivered)
    assert outcome.status_code == 201


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, RetryLater),
        (500, RetryLater),
        (502, RetryLater),
        (504, RetryLater),
        (400, PermanentFailure),
        (401, PermanentFailure),
        (404, PermanentFailure),
        (422, PermanentFailure),
        (408, PermanentFailure),
        (501, PermanentFailure),
    ],
)
async def test_rest_status_classification(status: int, kind: type[Exception]) -> None:
    """REST retries 429, 500 and >=502; other 4xx are permanent with the error title."""
    body = json.dumps({"error": {"title": "Nope here"}}).encode()
    context = mock_context(lambda r: HttpResponse(status, {}, body))
    with pytest.raises(kind, match="Nope here"):
        await NewRelicForwarder(rest_config()).send(make_event(), context)


async def test_network_error_retries() -> None:
    """A timeout becomes RetryLater."""
    context = mock_context(raising(TimeoutError()))
    with pytest.raises(RetryLater):
        await NewRelicForwarder(make_config()).send(make_event(), context)


# --- REST limits ---------------------------------------------------------------------


def test_rest_text_strips_characters_beyond_the_bmp_and_caps_bytes() -> None:
    """Emoji go; the cut never splits a character; BMP text (é, 漢) stays."""
    assert rest_text("ship 🚀 it 🎉") == "ship  it "
    assert rest_text("é漢🚀") == "é漢"
    assert rest_text("ab漢", 4) == "ab"
    assert rest_text("x" * 10, 4) == "xxxx"


def test_rest_request_keeps_changelog_and_description_within_64_kib() -> None:
    """Changelog and description are at most 65,535 bytes and without 4-byte characters."""
    meta = {"user_id": "bot 🤖", "changelog": "🚀" + "é" * MAX_REST_TEXT}
    sent = build_rest_request(rest_config(), make_event(meta_data=meta), NOW, "d").json()
    deployment = sent["deployment"]
    assert len(deployment["changelog"].encode()) <= MAX_REST_TEXT
    assert deployment["changelog"].startswith("éé") and "🚀" not in deployment["changelog"]
    assert deployment["user"] == "bot "


def test_rest_request_without_timestamp_describes_the_time() -> None:
    """timestamp=False leaves the marker at New Relic's time, its own in the description."""
    sent = build_rest_request(rest_config(), make_event(), NOW, "d", timestamp=False).json()
    deployment = sent["deployment"]
    assert "timestamp" not in deployment
    assert deployment["description"].endswith("; deployed at 2024-05-01T11:55:00.000Z")


@pytest.mark.parametrize(
    ("status", "title", "expected"),
    [
        (422, "Validation failed: Timestamp must be later than the latest", True),
        (400, "timestamp is invalid", True),
        (422, "Validation failed: Revision can't be blank", False),
        (500, "timestamp", False),
    ],
)
def test_refused_timestamp_is_a_4xx_about_the_timestamp(
    status: int, title: str, expected: bool
) -> None:
    """Only a 400/422 whose reason names the timestamp is answered by resending without it."""
    answer = HttpResponse(status, {}, json.dumps({"error": {"title": title}}).encode())
    assert refused_timestamp(answer) is expected


async def test_rest_marker_refused_for_its_time_is_sent_again_without_it() -> None:
    """A marker refused for its timestamp is sent once more, without one."""
    answers = iter(
        [
            HttpResponse(422, {}, b'{"error": {"title": "Timestamp is before the latest"}}'),
            HttpResponse(201, {}, b'{"deployment": {"id": 1}}'),
        ]
    )
    context = mock_context(lambda request: next(answers))
    outcome = await NewRelicForwarder(rest_config()).send(make_event(), context)
    assert isinstance(outcome, Delivered) and outcome.status_code == 201
    first, second = (r.json()["deployment"] for r in requests_of(context))
    assert "timestamp" in first and "timestamp" not in second
