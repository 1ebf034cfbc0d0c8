"""Bugsnag forwarder: Build API request builder, provider guess, classification."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import EntryPoint
from typing import Any

import pytest
from pydantic import ValidationError

from forwarders.base import Delivered, Event, PermanentFailure, RetryLater, Skipped
from forwarders.bugsnag import (
    BugsnagConfig,
    BugsnagForwarder,
    build_payload,
    build_request,
    builder_name,
    metadata,
    repository_host,
    skip_reason,
    source_provider,
    warnings,
)
from relay.delivery.http import USER_AGENT, HttpResponse
from relay.delivery.plugins import GROUP, Registry
from relay.errors import ConfigError
from tests.forwarder_support import answering, deployment_event, mock_context, raising, requests_of

API_KEY = "0123456789abcdef0123456789ABCDEF"


def make_config(**overrides: Any) -> BugsnagConfig:
    """A valid Bugsnag config with `overrides` applied."""
    values: dict[str, Any] = {"name": "bugsnag", "type": "bugsnag", "api_key": API_KEY}
    return BugsnagConfig.model_validate({**values, **overrides})


def make_event(event_type: str = "deployment.created", **data: Any) -> Event:
    """A successful deployment event without branch; `data` overrides the deployment's fields."""
    return deployment_event(event_type, **{"branch": None, **data})


# -- configuration -------------------------------------------------------------------------


def test_config_defaults_and_secret() -> None:
    """The URL defaults to build.bugsnag.com; the key is a secret absent from repr."""
    config = make_config()
    assert config.url is None and config.base_url == "https://build.bugsnag.com"
    assert config.secrets() == [API_KEY]
    assert API_KEY not in repr(config)


@pytest.mark.parametrize(
    "key", ["0123456789abcdef", API_KEY + "0", "g123456789abcdef0123456789abcdef", ""]
)
def test_config_rejects_malformed_api_key_without_echoing_it(key: str) -> None:
    """api_key must be 32 hex characters; the error does not quote the value."""
    with pytest.raises(ValidationError) as caught:
        make_config(api_key=key)
    assert "32 hexadecimal" in str(caught.value)
    if key:
        assert key not in str(caught.value)


def test_config_rejects_unknown_provider() -> None:
    """provider must be one Bugsnag knows."""
    with pytest.raises(ValidationError):
        make_config(provider="sourcehut")


def test_config_loads_through_the_registry() -> None:
    """The entry point resolves to the forwarder and validates its keys."""
    registry = Registry([EntryPoint("bugsnag", "forwarders.bugsnag:BugsnagForwarder", GROUP)])
    raw = {"name": "b", "type": "bugsnag", "api_key": API_KEY, "url": "http://127.0.0.1:9/"}
    config = registry.validate(raw, "forwarders[0]")
    assert isinstance(config, BugsnagConfig)
    assert config.url == "http://127.0.0.1:9"
    with pytest.raises(ConfigError):
        registry.validate({**raw, "token": "x"}, "forwarders[0]")


# -- provider guess --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("repository", "host"),
    [
        ("https://github.com/acme/web", "github.com"),
        ("https://www.GitHub.com/acme/web", "github.com"),
        ("git@gitlab.com:acme/web.git", "gitlab.com"),
        ("ssh://git@bitbucket.org/acme/web.git", "bitbucket.org"),
        ("not a url", None),
    ],
)
def test_repository_host(repository: str, host: str | None) -> None:
    """The host of https, ssh and scp-like repository addresses."""
    assert repository_host(repository) == host


@pytest.mark.parametrize(
    ("overrides", "provider"),
    [
        ({"repository": "https://github.com/acme/web"}, "github"),
        ({"repository": "https://gitlab.com/acme/web"}, "gitlab"),
        ({"repository": "https://bitbucket.org/acme/web"}, "bitbucket"),
        ({"repository": "https://git.acme.io/web"}, None),
        (
            {"repository": "https://git.acme.io/web", "provider": "gitlab-onpremise"},
            "gitlab-onpremise",
        ),
        (
            {"repository": "https://github.com/acme/web", "provider": "github-enterprise"},
            "github-enterprise",
        ),
        ({}, None),
    ],
)
def test_source_provider(overrides: dict[str, str], provider: str | None) -> None:
    """A configured provider wins; otherwise a well-known host is recognised, else none."""
    assert source_provider(make_config(**overrides)) == provider


# -- request ---------------------------------------------------------------------------------


def test_request_for_a_deployment() -> None:
    """POST {url}/ with JSON, no auth header, and the documented body."""
    config = make_config(repository="https://github.com/acme/web", url="https://bs.example/")
    event = make_event(
        branch="main",
        tag="v1.2.3",
        host="web-1",
        meta_data={"user_id": 42, "ci": {"job": 7, "url": "https://ci/7"}},
    )
    request = build_request(config, event, "dlv-9")
    assert (request.method, request.url) == ("POST", "https://bs.example/")
    assert request.headers == {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Idempotency-Key": "dlv-9",
    }
    assert request.json() == {
        "apiKey": API_KEY,
        "appVersion": "1.2.3",
        "builderName": "42",
        "releaseStage": "production",
        "sourceControl": {
            "provider": "github",
            "repository": "https://github.com/acme/web",
            "revision": "0123456789abcdef",
        },
        "metadata": {
            "user_id": "42",
            "ci.job": "7",
            "ci.url": "https://ci/7",
            "branch": "main",
            "tag": "v1.2.3",
            "host": "web-1",
        },
    }


def test_minimal_build_payload() -> None:
    """A build without stage, repository or meta_data sends only the required fields."""
    payload = build_payload(make_config(), make_event("build.created", stage=None))
    assert payload == {"apiKey": API_KEY, "appVersion": "1.2.3", "builderName": "relay"}


@pytest.mark.parametrize(
    ("overrides", "data"),
    [
        ({"repository": "https://github.com/acme/web"}, {"commit_sha": None}),
        ({"repository": "https://git.acme.io/web"}, {}),
    ],
)
def test_source_control_needs_commit_and_provider(
    overrides: dict[str, str], data: dict[str, Any]
) -> None:
    """No commit sha, or a host with no known provider, means no sourceControl."""
    assert "sourceControl" not in build_payload(make_config(**overrides), make_event(**data))


def test_metadata_values_are_all_strings() -> None:
    """Nested keys are dotted; numbers, booleans, null and lists become strings."""
    meta = {"a": {"b": {"c": 1}}, "ok": True, "none": None, "list": [1, "x"], "ratio": 0.5}
    assert metadata({"meta_data": meta, "branch": "main"}) == {
        "a.b.c": "1",
        "ok": "true",
        "none": "null",
        "list": '[1, "x"]',
        "ratio": "0.5",
        "branch": "main",
    }


def test_deployment_fields_override_same_named_metadata() -> None:
    """The deployment's own branch wins over a meta_data key of the same name."""
    assert metadata({"meta_data": {"branch": "old"}, "branch": "main"}) == {"branch": "main"}


def test_builder_name_precedence() -> None:
    """Configured builder_name, then meta_data.user_id, then "relay"."""
    data = {"meta_data": {"user_id": "alice"}}
    assert builder_name(make_config(builder_name="ci-bot"), data) == "ci-bot"
    assert builder_name(make_config(), data) == "alice"
    assert builder_name(make_config(), {"meta_data": {}}) == "relay"


@pytest.mark.parametrize(
    ("event_type", "status", "skipped"),
    [
        ("deployment.created", "success", False),
        ("build.created", "success", False),
        ("deployment.completed", "success", False),
        ("deployment.completed", "crashed-error", True),
        ("deployment.created", "build-error", True),
        ("build.created", "build-error", True),
        ("deployment.started", "building", True),
        ("deployment.status_changed", "pushing", True),
        ("deployment.cancelled", "aborted", True),
        ("release.created", "success", True),
    ],
)
def test_only_successful_releases_are_reported(event_type: str, status: str, skipped: bool) -> None:
    """created/build.created/completed with status success are sent; everything else skipped."""
    reason = skip_reason(make_event(event_type, status=status))
    assert (reason is not None) is skipped


def test_warnings_are_joined() -> None:
    """A 200's warnings become one line, with the API key masked."""
    body = b'{"status":"ok","warnings":["no repo", "key %s unknown"]}' % API_KEY.encode()
    assert warnings(HttpResponse(200, {}, body), API_KEY) == "no repo; key *** unknown"
    assert warnings(HttpResponse(200, {}, b'{"status":"ok"}'), API_KEY) == ""


# -- send ---------------------------------------------------------------------------------


async def test_send_delivers_with_warnings() -> None:
    """A 200 is delivered, with the answer's warnings as the excerpt."""
    context = mock_context(answering(200, b'{"status":"ok","warnings":["sourceControl ignored"]}'))
    outcome = await BugsnagForwarder(make_config()).send(make_event(), context)
    assert outcome == Delivered(200, "sourceControl ignored")
    assert len(requests_of(context)) == 1
    assert "Authorization" not in requests_of(context)[0].headers


async def test_send_skips_without_a_request() -> None:
    """A skipped event makes no request."""
    context = mock_context(answering(200))
    outcome = await BugsnagForwarder(make_config()).send(
        make_event("deployment.started", status="building"), context
    )
    assert isinstance(outcome, Skipped)
    assert requests_of(context) == []


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_transient_answers_retry(status: int) -> None:
    """408, 429 and 5xx ask for a retry."""
    context = mock_context(answering(status, b"", {"Retry-After": "120"}))
    with pytest.raises(RetryLater) as caught:
        await BugsnagForwarder(make_config()).send(make_event(), context)
    assert caught.value.status_code == status
    assert caught.value.at == datetime(2024, 5, 1, 12, 2, tzinfo=UTC)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
async def test_client_errors_are_permanent_and_mask_the_key(status: int) -> None:
    """Other 4xx are permanent; an answer quoting the API key has it masked."""
    body = b'{"errors":["apiKey %s is not a project"]}' % API_KEY.encode()
    context = mock_context(answering(status, body))
    with pytest.raises(PermanentFailure) as caught:
        await BugsnagForwarder(make_config()).send(make_event(), context)
    assert caught.value.status_code == status
    assert API_KEY not in caught.value.excerpt + str(caught.value)
    assert "apiKey *** is not a project" in caught.value.excerpt


async def test_network_error_retries() -> None:
    """A refused connection becomes RetryLater."""
    context = mock_context(raising(ConnectionRefusedError("refused")))
    with pytest.raises(RetryLater):
        await BugsnagForwarder(make_config()).send(make_event(), context)


@pytest.mark.parametrize(
    ("key", "url", "expected"),
    [
        ("00000" + "a" * 27, None, "https://build.bugsnag.smartbear.com/"),
        ("0000a" + "a" * 27, None, "https://build.bugsnag.com/"),
        (API_KEY, None, "https://build.bugsnag.com/"),
        ("00000" + "a" * 27, "https://bugsnag.internal:49000", "https://bugsnag.internal:49000/"),
    ],
)
def test_the_key_chooses_the_build_api_host_unless_url_is_set(
    key: str, url: str | None, expected: str
) -> None:
    """Keys beginning 00000 are InsightHub's (build.bugsnag.smartbear.com); `url` wins."""
    config = make_config(api_key=key, url=url)
    assert build_request(config, make_event(), "d").url == expected
