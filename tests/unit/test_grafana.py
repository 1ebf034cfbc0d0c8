"""Grafana forwarder: annotation builders, classification, create-then-patch lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import EntryPoint
from typing import Any

import pytest
from pydantic import ValidationError

from forwarders.base import Delivered, Event, PermanentFailure, RetryLater, Skipped
from forwarders.grafana import (
    GrafanaConfig,
    GrafanaForwarder,
    annotation_tags,
    annotation_text,
    build_create,
    build_patch,
    created_id,
    cut_tag,
    epoch_ms,
    fit_tags,
    region,
    tags_length,
    within_columns,
)
from relay.delivery.http import USER_AGENT, HttpRequest, HttpResponse
from relay.delivery.plugins import GROUP, Registry
from relay.errors import ConfigError
from tests.forwarder_support import (
    Handler,
    answering,
    deployment_event,
    mock_context,
    raising,
    requests_of,
)

TOKEN = "glsa_secret_service_account_token"
STARTED_MS = 1714564800000  # 2024-05-01T12:00:00Z
FINISHED_MS = 1714564925500  # 2024-05-01T12:02:05.500Z
CONFIG = {
    "name": "grafana",
    "type": "grafana",
    "url": "https://grafana.example.com/",
    "token": TOKEN,
    "tags": ["deploy"],
}


def make_config(**overrides: Any) -> GrafanaConfig:
    """A valid Grafana config with `overrides` applied."""
    return GrafanaConfig.model_validate({**CONFIG, **overrides})


def make_event(event_type: str = "deployment.created", **data: Any) -> Event:
    """A deployment event that started at 12:00 (NOW) and finished at 12:02:05.5."""
    times = {"started_at": "2024-05-01T12:00:00.000Z", "finished_at": "2024-05-01T12:02:05.500Z"}
    return deployment_event(event_type, **{**times, **data})


def added(annotation_id: int = 7) -> Handler:
    """A handler answering like Grafana to a create (and to a patch)."""

    def handle(request: HttpRequest) -> HttpResponse:
        if request.method == "PATCH":
            return HttpResponse(200, {}, b'{"message":"Annotation patched"}')
        body = b'{"message":"Annotation added","id":%d}' % annotation_id
        return HttpResponse(200, {}, body)

    return handle


# -- configuration -------------------------------------------------------------------------


def test_config_strips_trailing_slash_and_keeps_token_secret() -> None:
    """The base URL loses its trailing slash; the token is a secret absent from repr."""
    config = make_config()
    assert config.url == "https://grafana.example.com"
    assert config.secrets() == [TOKEN]
    assert TOKEN not in repr(config)


def test_config_rejects_panel_without_dashboard() -> None:
    """A panel id alone points nowhere, so it needs a dashboard uid."""
    with pytest.raises(ValidationError, match="panel_id needs dashboard_uid"):
        make_config(panel_id=4)


def test_config_rejects_non_http_url() -> None:
    """The url must be http(s)."""
    with pytest.raises(ValidationError, match="http"):
        make_config(url="grafana.example.com")


def test_config_loads_through_the_registry() -> None:
    """The entry point resolves to the forwarder and validates its keys, unknown ones rejected."""
    ep = EntryPoint("grafana", "forwarders.grafana:GrafanaForwarder", GROUP)
    registry = Registry([ep])
    raw = {"name": "g", "type": "grafana", "url": "https://g.example", "token": TOKEN}
    assert isinstance(registry.validate(raw, "forwarders[0]"), GrafanaConfig)
    with pytest.raises(ConfigError):
        registry.validate({**raw, "dashboard_id": 3}, "forwarders[0]")


# -- pure builders ------------------------------------------------------------------------


def test_epoch_ms_is_exact_milliseconds() -> None:
    """ISO-8601 with a Z becomes integer epoch milliseconds, without float rounding."""
    assert epoch_ms("2024-05-01T12:02:05.500Z") == FINISHED_MS
    assert epoch_ms("2024-05-01T14:00:00+02:00") == STARTED_MS
    assert epoch_ms(None) is None


def test_create_request_for_a_finished_deployment() -> None:
    """A one-call deployment is a region annotation with the documented fields only."""
    config = make_config(dashboard_uid="abc123", panel_id=4, org_id=2)
    request = build_create(config, make_event(meta_data={"url": "https://ci/1"}), "dlv-9")
    assert request.method == "POST"
    assert request.url == "https://grafana.example.com/api/annotations"
    assert request.headers == {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Authorization": f"Bearer {TOKEN}",
        "Idempotency-Key": "dlv-9",
        "X-Grafana-Org-Id": "2",
    }
    assert request.json() == {
        "text": "Deploy web 1.2.3 to production: success (0123456 on main) https://ci/1",
        "time": STARTED_MS,
        "timeEnd": FINISHED_MS,
        "tags": ["deploy", "component:web", "stage:production", "version:1.2.3", "result:success"],
        "dashboardUID": "abc123",
        "panelId": 4,
        "data": {"deployment_id": "dep-1", "event": "deployment.created"},
    }


def test_create_request_without_optional_keys_sends_no_dashboard_fields() -> None:
    """No org header, no dashboardUID/panelId and never the deprecated dashboardId."""
    request = build_create(make_config(), make_event(), "dlv-1")
    assert "X-Grafana-Org-Id" not in request.headers
    body = request.json()
    assert not {"dashboardUID", "panelId", "dashboardId"} & body.keys()


def test_started_event_is_a_point_at_the_start() -> None:
    """A started deployment has no finish yet: time only, no timeEnd."""
    event = make_event("deployment.started", finished_at=None, result=None, status="building")
    body = build_create(make_config(), event, "d").json()
    assert body["time"] == STARTED_MS
    assert "timeEnd" not in body
    assert body["text"] == "Deploy web 1.2.3 to production: building (0123456 on main)"
    assert "result:building" not in body["tags"]


def test_region_falls_back_to_finish_then_event_time() -> None:
    """time = started_at, else finished_at, else the event time; equal ends are no region."""
    assert region(make_event(started_at=None)) == (FINISHED_MS, None)
    same = make_event(finished_at="2024-05-01T12:00:00Z")
    assert region(same) == (STARTED_MS, None)
    neither = make_event(started_at=None, finished_at=None)
    assert region(neither) == (STARTED_MS, None)  # NOW is 12:00:00Z


def test_tags_skip_absent_fields_and_duplicates() -> None:
    """Absent stage/result give no tag; a configured tag equal to a computed one appears once."""
    config = make_config(tags=["deploy", "component:web"])
    event = make_event(stage=None, result=None, status="success")
    assert annotation_tags(config, event) == ["deploy", "component:web", "version:1.2.3"]


def test_build_event_is_tagged_build() -> None:
    """build.created gets the `build` tag and a build summary."""
    event = make_event("build.created", kind="build", stage=None)
    assert annotation_tags(make_config(), event) == [
        "deploy",
        "build",
        "component:web",
        "version:1.2.3",
        "result:success",
    ]
    assert annotation_text(event).startswith("Build web 1.2.3: success")


def test_cancelled_without_result_is_tagged_with_its_status() -> None:
    """An ended deployment with no result uses its terminal status as the result tag."""
    event = make_event("deployment.cancelled", result=None, status="aborted")
    assert "result:aborted" in annotation_tags(make_config(), event)


def test_summary_is_one_line_and_links_uri() -> None:
    """Newlines in fields are collapsed; meta_data.uri serves as the link."""
    event = make_event(branch="fix\nthings", meta_data={"uri": "https://deploys/9"})
    text = annotation_text(event)
    assert "\n" not in text
    assert text.endswith("(0123456 on fix things) https://deploys/9")


def test_patch_request_sets_end_tags_and_text() -> None:
    """Finishing a region PATCHes timeEnd, the full tags (with result) and the text."""
    request = build_patch(make_config(), make_event("deployment.completed"), 42, "dlv-2")
    assert request.method == "PATCH"
    assert request.url == "https://grafana.example.com/api/annotations/42"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.json() == {
        "timeEnd": FINISHED_MS,
        "tags": ["deploy", "component:web", "stage:production", "version:1.2.3", "result:success"],
        "text": "Deploy web 1.2.3 to production: success (0123456 on main)",
    }


def test_created_id_requires_an_integer_id() -> None:
    """A 200 without an integer id (e.g. a proxy's login page) is a permanent failure."""
    assert created_id(HttpResponse(200, {}, b'{"message":"Annotation added","id":3}')) == 3
    with pytest.raises(PermanentFailure, match="without an annotation id"):
        created_id(HttpResponse(200, {}, b"<html>login</html>"))


# -- send ---------------------------------------------------------------------------------


async def test_started_creates_and_remembers_the_annotation() -> None:
    """deployment.started POSTs once and keeps the id in shared and state."""
    context = mock_context(added(7))
    event = make_event("deployment.started", finished_at=None, result=None, status="building")
    outcome = await GrafanaForwarder(make_config()).send(event, context)
    assert outcome == Delivered(200, "annotation 7 added")
    assert [r.method for r in requests_of(context)] == ["POST"]
    assert context.shared["annotation_id"] == 7
    assert context.state["annotation_id"] == 7


async def test_rerun_of_a_finished_create_sends_nothing() -> None:
    """A delivery whose state already holds the created id does not create a second one."""
    context = mock_context(added(8), state={"annotation_id": 7})
    outcome = await GrafanaForwarder(make_config()).send(make_event(), context)
    assert outcome == Delivered(None, "annotation 7 already added")
    assert requests_of(context) == []


@pytest.mark.parametrize("event_type", ["deployment.completed", "deployment.cancelled"])
async def test_end_patches_the_known_annotation(event_type: str) -> None:
    """With a remembered id, completed/cancelled PATCH it and create nothing."""
    context = mock_context(added(99), shared={"annotation_id": 7})
    outcome = await GrafanaForwarder(make_config()).send(make_event(event_type), context)
    assert outcome == Delivered(200, "annotation 7 patched")
    assert [(r.method, r.url.rsplit("/", 1)[-1]) for r in requests_of(context)] == [("PATCH", "7")]
    assert context.shared["annotation_id"] == 7


async def test_end_without_known_annotation_creates_a_region() -> None:
    """No remembered id: completed creates a region annotation and remembers it."""
    context = mock_context(added(5))
    outcome = await GrafanaForwarder(make_config()).send(
        make_event("deployment.completed"), context
    )
    assert isinstance(outcome, Delivered)
    (request,) = requests_of(context)
    assert request.method == "POST"
    assert request.json()["timeEnd"] == FINISHED_MS
    assert context.shared["annotation_id"] == 5


@pytest.mark.parametrize("event_type", ["deployment.status_changed", "release.created"])
async def test_other_events_are_skipped(event_type: str) -> None:
    """Events Grafana does not track are skipped without a request."""
    context = mock_context(added())
    outcome = await GrafanaForwarder(make_config()).send(make_event(event_type), context)
    assert isinstance(outcome, Skipped)
    assert requests_of(context) == []


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
async def test_transient_answers_retry(status: int) -> None:
    """429 and 5xx (and 408) ask for a retry and store no id."""
    context = mock_context(answering(status))
    with pytest.raises(RetryLater) as caught:
        await GrafanaForwarder(make_config()).send(make_event(), context)
    assert caught.value.status_code == status
    assert "annotation_id" not in context.shared


async def test_retry_after_is_honoured() -> None:
    """A 429 with Retry-After says when to come back."""
    context = mock_context(answering(429, headers={"Retry-After": "30"}))
    with pytest.raises(RetryLater) as caught:
        await GrafanaForwarder(make_config()).send(make_event(), context)
    assert caught.value.at == datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_are_permanent(status: int) -> None:
    """400/401/403/404 (and other 4xx) are permanent; the token is never in the reason."""
    context = mock_context(answering(status, b'{"message":"nope"}'))
    with pytest.raises(PermanentFailure) as caught:
        await GrafanaForwarder(make_config()).send(make_event(), context)
    assert caught.value.status_code == status
    assert TOKEN not in str(caught.value) + caught.value.excerpt


async def test_patch_of_a_deleted_annotation_is_permanent() -> None:
    """A 404 on PATCH says the remembered annotation is gone; no second annotation is made."""
    context = mock_context(answering(404), shared={"annotation_id": 7})
    with pytest.raises(PermanentFailure, match="annotation 7 no longer exists"):
        await GrafanaForwarder(make_config()).send(make_event("deployment.completed"), context)
    assert [r.method for r in requests_of(context)] == ["PATCH"]


@pytest.mark.parametrize("error", [ConnectionResetError("reset"), TimeoutError()])
async def test_network_errors_retry(error: Exception) -> None:
    """Network errors and timeouts become RetryLater."""
    context = mock_context(raising(error))
    with pytest.raises(RetryLater):
        await GrafanaForwarder(make_config()).send(make_event(), context)


# --- tags within [annotations] tags_length ------------------------------------------------


def test_tags_length_counts_utf8_bytes_quotes_and_commas() -> None:
    """As Grafana's store estimates it: `["a","é"]` is 10, an empty list 2."""
    assert tags_length([]) == 2
    assert tags_length(["a"]) == 5
    assert tags_length(["a", "é"]) == 10


def test_cut_tag_keeps_whole_characters_and_marks_the_cut() -> None:
    """A cut ends in an ellipsis within the byte budget and never splits a character."""
    assert cut_tag("version:1.2", 20) == "version:1.2"
    assert cut_tag("version:" + "é" * 10, 16) == "version:éé…"
    assert len(cut_tag("version:" + "é" * 10, 16).encode()) <= 16


def test_fit_tags_cuts_the_longest_first_and_keeps_the_component() -> None:
    """Over the limit the longest tags are cut to a common cap; component:… stays whole."""
    component = "component:" + "c" * 100
    tags = ["team:" + "t" * 300, component, "stage:prod", "version:" + "v" * 300]
    fitted = fit_tags(tags, 500, keep=component)
    assert tags_length(fitted) <= 500
    assert fitted[1] == component and fitted[2] == "stage:prod"
    assert fitted[0].endswith("…") and fitted[3].endswith("…")
    assert abs(len(fitted[0].encode()) - len(fitted[3].encode())) <= 1
    assert fit_tags(["a", "b"], 500) == ["a", "b"]


def test_fit_tags_drops_tags_but_never_the_component_when_cutting_is_not_enough() -> None:
    """When even cut tags do not fit, the last ones go; the component tag is kept."""
    component = "component:" + "c" * 100
    tags = [f"tag{i}:{'x' * 20}" for i in range(10)] + [component]
    fitted = fit_tags(tags, 128, keep=component)
    assert component in fitted and tags_length(fitted) <= 128


def test_annotation_tags_fit_the_configured_limit() -> None:
    """The default limit is 500; a raised tags_length keeps long tags whole but for
    Grafana's 100-character tag columns."""
    event = make_event(version="v" * 200, stage="s" * 100)
    tags = annotation_tags(make_config(tags=["team:" + "t" * 150]), event)
    assert tags_length(tags) <= 500 and "component:web" in tags
    raised = annotation_tags(make_config(tags=["team:" + "t" * 100], tags_length=2000), event)
    assert {"stage:" + "s" * 100, "team:" + "t" * 100, "version:" + "v" * 99 + "…"} <= set(raised)
    with pytest.raises(ValidationError):
        make_config(tags_length=50)


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("version:" + "v" * 100, "version:" + "v" * 100),
        ("version:" + "v" * 101, "version:" + "v" * 99 + "…"),
        ("k" * 101, "k" * 99 + "…"),
        ("k" * 101 + ":" + "v" * 101 + ":tail", "k" * 99 + "…:" + "v" * 99 + "…:tail"),
        ("note:" + "x" * 50 + ":" + "y" * 200, "note:" + "x" * 50 + ":" + "y" * 200),
    ],
)
def test_within_columns_cuts_key_and_value_as_grafana_splits_them(tag: str, expected: str) -> None:
    """Key (before the first colon) and value (up to a second colon) each keep at most 100
    characters, Grafana's tag columns; what follows a second colon Grafana drops anyway."""
    assert within_columns(tag) == expected
