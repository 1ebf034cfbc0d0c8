"""Sentry forwarder: release/deploy request builders, classification, two-step progress."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from forwarders.base import Delivered, Event, PermanentFailure, RetryLater, Skipped
from forwarders.sentry import (
    SentryConfig,
    SentryForwarder,
    TemplateError,
    build_deploy_request,
    build_release_request,
    plan_for,
    refs_left_out,
    refused_refs,
    release_version,
    render_template,
    version_problem,
)
from relay.delivery.http import USER_AGENT, HttpRequest, HttpResponse
from tests.forwarder_support import NOW, deployment_event, mock_context, raising, requests_of

TOKEN = "sntrys_secret_token_value"
SHA = "0123456789abcdef0123456789abcdef01234567"
CONFIG = {
    "name": "sentry",
    "type": "sentry",
    "url": "https://sentry.example.com/",
    "token": TOKEN,
    "org": "acme",
    "projects": ["web", "api"],
}


def make_config(**overrides: Any) -> SentryConfig:
    """A valid Sentry config with `overrides` applied."""
    return SentryConfig.model_validate({**CONFIG, **overrides})


def make_event(event_type: str = "deployment.completed", **data: Any) -> Event:
    """A deployment event; `data` overrides the deployment's fields."""
    return deployment_event(event_type, **{"commit_sha": SHA, **data})


def ok(request: HttpRequest) -> HttpResponse:
    """Sentry's success answer for either endpoint."""
    return HttpResponse(201, {}, b'{"version": "web@1.2.3"}')


def test_release_request_url_headers_and_body() -> None:
    """The release POST goes to the org's releases/ with a Bearer token and the mapped body."""
    config = make_config(repository="acme/web")
    request = build_release_request(config, make_event(), "web@1.2.3", "del-1")
    assert request.method == "POST"
    assert request.url == "https://sentry.example.com/api/0/organizations/acme/releases/"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["Idempotency-Key"] == "del-1"
    assert request.json() == {
        "version": "web@1.2.3",
        "projects": ["web", "api"],
        "refs": [{"repository": "acme/web", "commit": SHA}],
        "dateReleased": "2024-05-01T11:55:00.000Z",
    }


def test_release_request_without_repository_has_no_refs() -> None:
    """Refs are only sent when a repository is configured and the commit is known."""
    no_repo = build_release_request(make_config(), make_event(), "v", "d").json()
    no_commit = build_release_request(
        make_config(repository="acme/web"), make_event(commit_sha=None), "v", "d"
    ).json()
    assert "refs" not in no_repo
    assert "refs" not in no_commit


def test_build_release_has_no_date_released() -> None:
    """A build is a release that is not yet released: no dateReleased."""
    event = make_event("build.created", kind="build", stage=None)
    assert "dateReleased" not in build_release_request(make_config(), event, "v", "d").json()


def test_deploy_request_percent_encodes_version_and_maps_fields() -> None:
    """The deploy path carries the version percent-encoded; environment = stage."""
    request = build_deploy_request(make_config(), make_event(), "web@1.2.3+b 1", "del-1")
    assert request.url == (
        "https://sentry.example.com/api/0/organizations/acme/releases/web%401.2.3%2Bb%201/deploys/"
    )
    assert request.json() == {
        "environment": "production",
        "name": "web@1.2.3+b 1",
        "projects": ["web", "api"],
        "dateStarted": "2024-05-01T11:50:00.000Z",
        "dateFinished": "2024-05-01T11:55:00.000Z",
    }


def test_deploy_name_prefers_code_name_and_is_truncated() -> None:
    """The deploy name is the code name, cut to Sentry's 64 characters."""
    event = make_event(code_name="ü" * 70)
    assert build_deploy_request(make_config(), event, "v", "d").json()["name"] == "ü" * 64


def test_template_renders_documented_fields() -> None:
    """Templates fill component, version, stage and meta_data keys."""
    data = make_event(meta_data={"build": 42}).data
    rendered = render_template("{component}-{stage}@{version}+{meta_data[build]}", data)
    assert rendered == "web-production@1.2.3+42"


def test_template_doubled_braces_are_literal() -> None:
    """`{{` and `}}` stand for single braces around or beside fields."""
    assert render_template("{{{component}}}-{{v}}", make_event().data) == "{web}-{v}"


@pytest.mark.parametrize(
    "template",
    [
        "{nope}",
        "{component.__class__}",
        "{version!r}",
        "{version:>9}",
        "{",
        "{meta_data}",
        "{}",
        "{component",
        "v}",
        "{stage[x]}",
    ],
)
def test_template_rejects_unsafe_or_unknown_fields(template: str) -> None:
    """Only the documented fields are allowed: no attributes, conversions or specs."""
    with pytest.raises(TemplateError):
        render_template(template, make_event().data)


def test_template_missing_key_is_a_clear_permanent_failure() -> None:
    """A missing meta_data key names the field instead of raising KeyError."""
    config = make_config(release="{component}@{meta_data[build]}")
    with pytest.raises(PermanentFailure, match=r"\{meta_data\[build\]\}"):
        release_version(config, make_event())


def test_config_rejects_bad_template_and_empty_projects() -> None:
    """A bad release template or an empty project list fails at configuration time."""
    with pytest.raises(ValidationError):
        make_config(release="{oops}")
    with pytest.raises(ValidationError):
        make_config(projects=[])


def test_config_secrets_and_default_url() -> None:
    """The token is a secret listed for redaction; the URL defaults to sentry.io."""
    config = SentryConfig.model_validate(
        {"name": "s", "type": "sentry", "token": TOKEN, "org": "o", "projects": ["p"]}
    )
    assert config.secrets() == [TOKEN]
    assert config.url == "https://sentry.io"
    assert TOKEN not in repr(config)


@pytest.mark.parametrize(
    "version",
    [
        *["", " ", ".", "..", "latest", "LATEST", " latest", "latest ", " .. ", "a/b", "a\\b"],
        *["a\nb", "a\tb", "x" * 201],
    ],
)
def test_invalid_versions_are_reported(version: str) -> None:
    """Sentry's release name rules are checked before sending."""
    assert version_problem(version) is not None


def test_valid_version_passes() -> None:
    """An ordinary package@version name is accepted."""
    assert version_problem("web@1.2.3+build.7") is None
    assert version_problem("x" * 200) is None


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (make_event("deployment.completed"), "release+deploy"),
        (make_event("deployment.created"), "release+deploy"),
        (make_event("build.created", kind="build", stage=None), "release"),
    ],
)
def test_plan_for_handled_events(event: Event, expected: str) -> None:
    """Finished deployments get release and deploy; builds only a release."""
    assert plan_for(event) == expected


@pytest.mark.parametrize(
    "event",
    [
        make_event("deployment.started", status="building"),
        make_event("deployment.cancelled", status="aborted"),
        make_event("release.created"),
        make_event("deployment.completed", status="crashed-error", result="failure"),
        make_event("build.created", kind="build", stage=None, status="build-error"),
        make_event("deployment.completed", stage=None),
    ],
)
async def test_inapplicable_events_are_skipped_without_requests(event: Event) -> None:
    """Other events, failures and stageless deployments are skipped before any request."""
    context = mock_context(ok)
    outcome = await SentryForwarder(make_config()).send(event, context)
    assert isinstance(outcome, Skipped)
    assert requests_of(context) == []


async def test_send_creates_release_then_deploy() -> None:
    """A completed deployment makes two requests and records both steps."""
    context = mock_context(ok)
    outcome = await SentryForwarder(make_config()).send(make_event(), context)
    assert isinstance(outcome, Delivered)
    urls = [r.url for r in requests_of(context)]
    assert urls[0].endswith("/releases/")
    assert urls[1].endswith("/releases/web%401.2.3/deploys/")
    assert context.state == {"release_done": True, "version": "web@1.2.3", "deploy_done": True}


async def test_release_already_existing_208_is_success() -> None:
    """Sentry's 208 for an existing release counts as done."""
    answers = iter([HttpResponse(208), HttpResponse(201)])
    context = mock_context(lambda r: next(answers))
    outcome = await SentryForwarder(make_config()).send(make_event(), context)
    assert isinstance(outcome, Delivered)
    assert context.state["deploy_done"] is True


async def test_build_creates_release_only() -> None:
    """build.created makes a single release request."""
    context = mock_context(ok)
    event = make_event("build.created", kind="build", stage=None)
    assert isinstance(await SentryForwarder(make_config()).send(event, context), Delivered)
    assert len(requests_of(context)) == 1
    assert "deploy_done" not in context.state


async def test_retry_after_release_goes_straight_to_deploy() -> None:
    """A failed deploy keeps release progress; the retry only sends the deploy."""
    forwarder = SentryForwarder(make_config())
    answers = iter([HttpResponse(201), HttpResponse(503)])
    first = mock_context(lambda r: next(answers))
    with pytest.raises(RetryLater):
        await forwarder.send(make_event(), first)
    assert first.state == {"release_done": True, "version": "web@1.2.3"}
    second = mock_context(ok, state=first.state)
    assert isinstance(await forwarder.send(make_event(), second), Delivered)
    assert [r.url.endswith("/deploys/") for r in requests_of(second)] == [True]


async def test_retry_reuses_the_version_already_released() -> None:
    """A retry deploys to the release it created even if the template changed since."""
    context = mock_context(ok, state={"release_done": True, "version": "web@old"})
    await SentryForwarder(make_config(release="{version}")).send(make_event(), context)
    assert requests_of(context)[0].url.endswith("/releases/web%40old/deploys/")


async def test_finished_deploy_is_never_repeated() -> None:
    """With both steps done, send makes no request at all."""
    context = mock_context(ok, state={"release_done": True, "version": "v", "deploy_done": True})
    assert isinstance(await SentryForwarder(make_config()).send(make_event(), context), Delivered)
    assert requests_of(context) == []


@pytest.mark.parametrize("status", [409, 429, 500, 502, 503, 504])
async def test_transient_statuses_retry(status: int) -> None:
    """409 (commits processing), 429 and 5xx are retried."""
    context = mock_context(lambda r: HttpResponse(status))
    with pytest.raises(RetryLater) as caught:
        await SentryForwarder(make_config()).send(make_event(), context)
    assert caught.value.status_code == status
    assert context.state == {}


async def test_rate_limit_reset_header_is_honoured() -> None:
    """X-Sentry-Rate-Limit-Reset sets when to retry."""
    reset = NOW.timestamp() + 90
    context = mock_context(lambda r: HttpResponse(429, {"X-Sentry-Rate-Limit-Reset": str(reset)}))
    with pytest.raises(RetryLater) as caught:
        await SentryForwarder(make_config()).send(make_event(), context)
    assert caught.value.at == datetime.fromtimestamp(reset, UTC)


async def test_409_is_transient_only_while_creating_the_release() -> None:
    """409 ("commits are being processed") is retried on the release step; on the deploy
    step it is a client error like any other, and permanent."""
    context = mock_context(
        lambda r: HttpResponse(409), state={"release_done": True, "version": "v"}
    )
    with pytest.raises(PermanentFailure):
        await SentryForwarder(make_config()).send(make_event(), context)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 501])
async def test_client_errors_are_permanent_and_hide_the_token(status: int) -> None:
    """Other 4xx are permanent; the token never appears in the failure."""
    context = mock_context(lambda r: HttpResponse(status, {}, b'{"detail": "nope"}'))
    with pytest.raises(PermanentFailure) as caught:
        await SentryForwarder(make_config()).send(make_event(), context)
    assert TOKEN not in caught.value.reason
    assert TOKEN not in caught.value.excerpt


async def test_deploy_404_says_the_release_is_missing() -> None:
    """A 404 on the deploy step is explained as a missing release."""
    context = mock_context(
        lambda r: HttpResponse(404), state={"release_done": True, "version": "v"}
    )
    with pytest.raises(PermanentFailure, match="release does not exist"):
        await SentryForwarder(make_config()).send(make_event(), context)


async def test_network_error_is_retried() -> None:
    """A connection failure becomes RetryLater."""
    context = mock_context(raising(ConnectionRefusedError("refused")))
    with pytest.raises(RetryLater):
        await SentryForwarder(make_config()).send(make_event(), context)


async def test_invalid_version_fails_before_any_request() -> None:
    """A rendered version Sentry would refuse is a permanent failure, nothing sent."""
    context = mock_context(ok)
    with pytest.raises(PermanentFailure, match="'/'"):
        await SentryForwarder(make_config()).send(make_event(version="feature/x"), context)
    assert requests_of(context) == []


async def test_invalid_stage_fails_before_any_request() -> None:
    """A stage Sentry cannot use as an environment fails before the release is made."""
    context = mock_context(ok)
    with pytest.raises(PermanentFailure, match="64"):
        await SentryForwarder(make_config()).send(make_event(stage="s" * 65), context)
    assert requests_of(context) == []


def test_release_url_from_meta_data_only_when_sentry_accepts_it() -> None:
    """meta_data.url becomes the release url unless longer than Sentry's 200."""
    short = make_event(meta_data={"url": "https://ci.example.com/1"})
    long = make_event(meta_data={"url": "https://ci.example.com/" + "x" * 200})
    assert build_release_request(make_config(), short, "v", "d").json()["url"] == (
        "https://ci.example.com/1"
    )
    assert "url" not in build_release_request(make_config(), long, "v", "d").json()


@pytest.mark.parametrize(
    "url",
    [
        "ci.example.com/1",
        "not a url",
        "http://jenkins/job/1",
        "https://ci.example.com/a b",
        "ftp://ci.example.com/1",
        "https://ci.example.com:99999/",
        "https://-bad.example.com/",
        "https://ci.example.c0m/",
        "https://ci.example.com/" + "x" * 200,
        "https://@ci.example.com/",
        "https://:secret@ci.example.com/",
    ],
)
def test_release_leaves_out_a_url_sentry_would_refuse(url: str) -> None:
    """Only a valid http(s) URL (host with a top-level domain, localhost or an IP) of at
    most 200 characters is sent: Sentry refuses the whole release over another."""
    event = make_event(meta_data={"url": url})
    assert "url" not in build_release_request(make_config(), event, "v", "d").json()


@pytest.mark.parametrize(
    "url",
    [
        "https://ci.example.com/j?x=1#y",
        "http://localhost:8080/j",
        "http://10.0.0.7/",
        "http://[::1]/",
        "https://ci.example.a-b/",
        "https://user@ci.example.com/",
    ],
)
def test_release_keeps_a_url_sentry_accepts(url: str) -> None:
    """Valid links are kept as they are."""
    event = make_event(meta_data={"url": url})
    assert build_release_request(make_config(), event, "v", "d").json()["url"] == url


def test_commit_longer_than_64_is_not_linked_and_says_why() -> None:
    """Sentry refuses commit ids over 64 characters: no refs, and the reason for the outcome."""
    config = make_config(repository="acme/web")
    event = make_event(commit_sha="a" * 65)
    assert "refs" not in build_release_request(config, event, "v", "d").json()
    assert (
        refs_left_out(config, event.data) == "the commit id is longer than Sentry's 64 characters"
    )
    assert refs_left_out(config, make_event(commit_sha="a" * 64).data) is None


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            {"refs": ["Invalid repository names: acme/web"]},
            "Invalid repository names: acme/web",
        ),
        (400, {"refs": [{"commit": ["Commit too long - max is 64 chars"]}]}, None),
        (400, {"version": ["Release with name latest is not allowed"]}, None),
        (409, {"refs": ["Invalid repository names: acme/web"]}, None),
    ],
)
def test_refused_refs_is_only_the_repository_refusal(
    status: int, body: dict[str, Any], expected: str | None
) -> None:
    """Only Sentry's 400 {"refs": [str, ...]}, given after the release exists, counts."""
    answer = HttpResponse(status, {}, json.dumps(body).encode())
    assert refused_refs(answer) == expected


async def test_refused_repository_still_creates_the_deploy() -> None:
    """After the repository refusal the deploy is sent; the outcome says what was left out."""
    answers = iter(
        [
            HttpResponse(400, {}, b'{"refs": ["Invalid repository names: acme/web"]}'),
            HttpResponse(201, {}, b'{"id": "1"}'),
        ]
    )
    context = mock_context(lambda request: next(answers))
    outcome = await SentryForwarder(make_config(repository="acme/web")).send(make_event(), context)
    assert outcome == Delivered(
        status_code=201,
        excerpt="release web@1.2.3; commit not linked: Sentry refused the repository "
        "(Invalid repository names: acme/web)",
    )
    assert [r.url.endswith("/deploys/") for r in requests_of(context)] == [False, True]
    assert context.state["release_done"] and context.state["deploy_done"]
