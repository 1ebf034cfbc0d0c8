"""Unit tests of the Standard Webhooks forwarder: signing, request, templates, answers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook

from forwarders.base import (
    Delivered,
    Event,
    PermanentFailure,
    RetryLater,
    SendContext,
    TargetGone,
)
from forwarders.common import mask
from forwarders.webhook import (
    WebhookConfig,
    WebhookForwarder,
    build_request,
    render_body,
    secret_key,
    sign,
)
from relay.delivery.http import USER_AGENT, HttpRequest, HttpResponse
from tests.forwarder_support import Handler, deployment_event, mock_context, raising, requests_of

SECRET = "whsec_" + base64.b64encode(b"current-secret-key-0123456789ab").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"previous-secret-key-9876543210").decode()
NOW = datetime(2024, 5, 1, 12, 0, 30, 900_000, tzinfo=UTC)
TS = 1714564830  # NOW in whole seconds, rounded down
API = {
    "component": "api",
    "version": "1.4.2",
    "host": "web-1",
    "started_at": "2024-05-01T11:58:00.000Z",
    "finished_at": "2024-05-01T12:00:00.000Z",
    "commit_sha": "0123456789abcdef0123456789abcdef01234567",
    "meta_data": {"url": "https://ci.example.com/jobs/7", "user_id": "alice"},
}


def make_event(event_type: str = "deployment.completed", **changes: Any) -> Event:
    """A completed production deployment of `api` 1.4.2 on web-1, created at 12:00."""
    return deployment_event(event_type, **{**API, **changes})


def make_config(**changes: Any) -> WebhookConfig:
    """A webhook config pointing at hooks.example.com."""
    raw: dict[str, Any] = {
        "name": "hook",
        "type": "webhook",
        "url": "https://hooks.example.com/relay?x=1",
        "secret": SECRET,
    }
    raw.update(changes)
    return WebhookConfig.model_validate(raw)


def entries(request: HttpRequest) -> list[str]:
    """The space-separated entries of the webhook-signature header."""
    return request.headers["webhook-signature"].split(" ")


def context(handler: Handler, *, delivery_id: str = "dlv_1") -> SendContext:
    """A send context at NOW answering every request with `handler`."""
    return mock_context(handler, delivery_id=delivery_id, now=NOW)


# --- signing ---------------------------------------------------------------


def test_sign_matches_the_specification_test_vector() -> None:
    """sign() reproduces the Standard Webhooks reference signature."""
    got = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_sign_is_hmac_sha256_of_id_timestamp_body_with_decoded_key() -> None:
    """The HMAC key is the base64-decoded part after whsec_, over `id.ts.body`."""
    body = '{"a":"é"}'.encode()
    expected = hmac.new(b"current-secret-key-0123456789ab", b"m1.42." + body, hashlib.sha256)
    assert sign(SECRET, "m1", 42, body) == "v1," + base64.b64encode(expected.digest()).decode()


@pytest.mark.parametrize("size", [24, 64])
def test_secret_key_accepts_24_to_64_bytes(size: int) -> None:
    """The Standard Webhooks bounds themselves are accepted."""
    key = bytes(range(size))
    assert secret_key("whsec_" + base64.b64encode(key).decode()) == key


def test_secret_key_accepts_unpadded_base64() -> None:
    """A whsec_ secret without its base64 padding still decodes."""
    key = b"twenty-five-random-bytes!"
    assert secret_key("whsec_" + base64.b64encode(key).decode().rstrip("=")) == key


@pytest.mark.parametrize(
    "secret",
    [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_not*base64!",
        "whsec_",
        "whsec_====",
        "whsec_" + base64.b64encode(b"k" * 23).decode(),
        "whsec_" + base64.b64encode(b"k" * 65).decode(),
    ],
)
def test_secret_key_rejects_what_is_not_a_whsec_secret(secret: str) -> None:
    """No prefix, invalid base64, or a key outside 24 to 64 bytes is a ValueError."""
    with pytest.raises(ValueError):
        secret_key(secret)


# --- the request ------------------------------------------------------------


def test_request_posts_the_envelope_as_compact_json() -> None:
    """The body is the event envelope, exactly as json_request serialises it."""
    event = make_event()
    request = build_request(make_config(), event, "dlv_1", NOW)
    assert request.method == "POST"
    assert request.url == "https://hooks.example.com/relay?x=1"
    assert request.json() == event.envelope()
    assert request.json()["timestamp"] == "2024-05-01T12:00:00.000Z"
    expected = json.dumps(event.envelope(), ensure_ascii=False, separators=(",", ":")).encode()
    assert request.body == expected


def test_an_event_sent_to_several_webhooks_has_the_same_body() -> None:
    """Every forwarder sends the same event with the same body bytes, each signed apart."""
    event = make_event()
    first = build_request(make_config(), event, "dlv_1", NOW)
    second = build_request(make_config(name="other"), make_event(), "dlv_2", NOW)
    assert first.body == second.body
    assert entries(first) != entries(second)


def test_an_event_id_with_other_data_gets_its_own_body() -> None:
    """Two events with one id but different data are never sent with each other's body."""
    build_request(make_config(), make_event(version="1.0.0"), "dlv_1", NOW)
    request = build_request(make_config(), make_event(version="2.0.0"), "dlv_2", NOW)
    assert request.json()["data"]["version"] == "2.0.0"


def test_request_headers() -> None:
    """webhook-id/-timestamp, JSON content type, User-Agent, Idempotency-Key and extras."""
    config = make_config(headers={"X-Team": "platform"})
    headers = build_request(config, make_event(), "dlv_1", NOW).headers
    assert headers["webhook-id"] == "dlv_1"
    assert headers["webhook-timestamp"] == str(TS)
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == USER_AGENT
    assert headers["Idempotency-Key"] == "dlv_1"
    assert headers["X-Team"] == "platform"


def test_signature_covers_the_body_bytes_exactly_as_sent() -> None:
    """The single entry is the HMAC of `id.timestamp.` + the very body bytes."""
    request = build_request(make_config(), make_event(), "dlv_1", NOW)
    signed = f"dlv_1.{TS}.".encode() + request.body
    digest = hmac.new(secret_key(SECRET), signed, hashlib.sha256).digest()
    assert entries(request) == ["v1," + base64.b64encode(digest).decode()]


def test_signature_verifies_with_the_standardwebhooks_package() -> None:
    """The reference implementation accepts the request signed at the current time."""
    now = datetime.now(UTC)
    request = build_request(make_config(), make_event(), "dlv_1", now)
    assert Webhook(SECRET).verify(request.body, dict(request.headers)) == make_event().envelope()


def test_rotation_signs_with_current_and_previous_secret() -> None:
    """During a rotation there are two entries, each verifiable with one secret alone."""
    now = datetime.now(UTC)
    config = make_config(previous_secrets=[OLD_SECRET])
    request = build_request(config, make_event(), "dlv_1", now)
    ts = int(request.headers["webhook-timestamp"])
    assert entries(request) == [
        sign(SECRET, "dlv_1", ts, request.body),
        sign(OLD_SECRET, "dlv_1", ts, request.body),
    ]
    for secret in (SECRET, OLD_SECRET):
        Webhook(secret).verify(request.body, dict(request.headers), json_parse=False)


def test_retry_keeps_the_id_and_resigns_with_the_new_timestamp() -> None:
    """Same delivery id later: same webhook-id, new timestamp, new signature."""
    first = build_request(make_config(), make_event(), "dlv_1", NOW)
    later = build_request(make_config(), make_event(), "dlv_1", NOW + timedelta(minutes=5))
    assert first.headers["webhook-id"] == later.headers["webhook-id"] == "dlv_1"
    assert int(later.headers["webhook-timestamp"]) == TS + 300
    assert first.headers["webhook-signature"] != later.headers["webhook-signature"]
    assert first.body == later.body


# --- configuration ----------------------------------------------------------


@pytest.mark.parametrize("name", ["webhook-signature", "Webhook-Id", "CONTENT-TYPE", "User-Agent"])
def test_config_forbids_overriding_relay_headers(name: str) -> None:
    """Static headers may not replace the signature, id, timestamp or content type."""
    with pytest.raises(ValidationError, match="set by relay"):
        make_config(headers={name: "x"})


@pytest.mark.parametrize(
    "headers", [{"X-A": "a\r\nX-Injected: 1"}, {"Bad Name": "v"}, {"X-Zero": "a\0"}]
)
def test_config_rejects_malformed_headers(headers: dict[str, str]) -> None:
    """Header names must be tokens and values single-line."""
    with pytest.raises(ValidationError):
        make_config(headers=headers)


def test_config_rejects_bad_secrets_without_echoing_them() -> None:
    """A secret that does not decode is refused; the message never contains it."""
    bad = "whsec_hunter2!!"
    for changes in ({"secret": bad}, {"previous_secrets": [SECRET, bad]}):
        with pytest.raises(ValidationError) as info:
            make_config(**changes)
        messages = [e["msg"] for e in info.value.errors(include_input=False)]
        assert messages and not any("hunter2" in m for m in messages)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "hooks.example.com/x", "https://"])
def test_config_requires_an_http_url(url: str) -> None:
    """Only absolute http(s) URLs are accepted."""
    with pytest.raises(ValidationError, match="http"):
        make_config(url=url)


@pytest.mark.parametrize("url", ["https://hooks.example.com:99999/x", "http://h:port/x"])
def test_config_refuses_a_url_whose_port_cannot_be(url: str) -> None:
    """A URL with an impossible port is a config error, not a delivery retried forever."""
    with pytest.raises(ValidationError, match="invalid port"):
        make_config(url=url)


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ('{"text": "oops"', "JSON template"),
        ('"just a string"', "object or an array"),
        ('{"text": "{compnent}"}', "unknown placeholder"),
        ('{"text": "{meta_data}"}', "unknown placeholder"),
        ('{"text": "{version[x]}"}', "unknown placeholder"),
    ],
)
def test_config_rejects_bad_templates(template: str, error: str) -> None:
    """Invalid JSON, scalars and unknown placeholders fail at configuration time."""
    with pytest.raises(ValidationError, match=error):
        make_config(body_template=template)


def test_secrets_lists_signing_keys_credential_headers_and_url() -> None:
    """Redaction covers both secrets, an Authorization header and the URL, not plain headers."""
    config = make_config(
        previous_secrets=[OLD_SECRET],
        headers={"Authorization": "Bearer tok-123", "X-Team": "platform"},
    )
    secrets = config.secrets()
    assert {SECRET, OLD_SECRET, "Bearer tok-123", config.url} <= set(secrets)
    assert "platform" not in secrets


def test_a_header_credential_quoted_without_its_scheme_is_masked() -> None:
    """`Authorization: Bearer <token>`: an answer quoting the token alone has it masked."""
    config = make_config(headers={"Authorization": "Bearer tok-123"})
    assert mask("token tok-123 is not valid", config.secrets()) == "token *** is not valid"


# --- templates --------------------------------------------------------------


def test_custom_template_escapes_quotes_and_newlines() -> None:
    """Values with quotes, backslashes and newlines stay inside their JSON string."""
    version = 'v1 "quoted"\n\\next'
    event = make_event(version=version, meta_data={"note": 'say "hi"\r\n}{'})
    template = '{"text": "{component} {version}", "note": "{meta_data[note]}", "n": 1}'
    request = build_request(make_config(body_template=template), event, "dlv_1", NOW)
    assert request.json() == {
        "text": f"api {version}",
        "note": 'say "hi"\r\n}{',
        "n": 1,
    }
    assert b"\n" not in request.body


def test_custom_template_fills_every_placeholder_kind() -> None:
    """type/stage/result, meta_data keys, non-string and absent values, literal braces."""
    event = make_event(meta_data={"count": 3, "tags": ["a"]}, tag=None)
    template = json.dumps(
        {
            "{type}": ["{type}", "{stage}/{result}", "{tag}", "{meta_data[missing]}"],
            "meta": "{meta_data[count]} {meta_data[tags]}",
            "braces": "{{component}}",
        }
    )
    assert render_body(template, event) == {
        "{type}": ["deployment.completed", "production/success", "", ""],
        "meta": '3 ["a"]',
        "braces": "{component}",
    }


def test_slack_template() -> None:
    """A Slack message: one escaped text line with the summary and the link."""
    event = make_event(component="a<b>&c")
    assert render_body("slack", event) == {
        "text": "Deploy a&lt;b&gt;&amp;c 1.4.2 to production: success "
        "(0123456 on main, host web-1) <https://ci.example.com/jobs/7|details>"
    }


def test_slack_template_for_a_status_change_without_link() -> None:
    """A status change shows the new status; no meta_data.url means no link."""
    event = make_event(
        "deployment.status_changed", result=None, status="building", meta_data={}, stage=None
    )
    assert render_body("slack", event) == {
        "text": "Deploy api 1.4.2: building (0123456 on main, host web-1)"
    }


def test_teams_template_is_an_adaptive_card_message() -> None:
    """A Teams message wraps an Adaptive Card with the summary, facts and a link."""
    body = render_body("teams", make_event())
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    summary = "Deploy api 1.4.2 to production: success (0123456 on main, host web-1)"
    assert card["body"][0]["text"] == summary
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Commit"] == "0123456789ab"
    assert facts["Stage"] == "production"
    assert card["actions"][0]["url"] == "https://ci.example.com/jobs/7"


def test_templated_body_is_what_gets_signed() -> None:
    """With a template the signature covers the templated bytes."""
    now = datetime.now(UTC)
    request = build_request(make_config(body_template="slack"), make_event(), "d", now)
    payload = Webhook(SECRET).verify(request.body, dict(request.headers))
    assert payload["text"].startswith("Deploy api 1.4.2")


# --- send and the classification of answers ----------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_send_2xx_is_delivered(status: int) -> None:
    """Any 2xx answer is a delivery."""
    ctx = context(lambda r: HttpResponse(status, body=b"ok"))
    outcome = await WebhookForwarder(make_config()).send(make_event(), ctx)
    assert outcome == Delivered(status, "ok")
    assert len(requests_of(ctx)) == 1


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_send_3xx_is_permanent_and_not_followed(status: int) -> None:
    """A redirect is a permanent failure (not a target-gone) and is not followed."""
    ctx = context(lambda r: HttpResponse(status, {"Location": "https://elsewhere/"}))
    with pytest.raises(PermanentFailure, match="redirect") as info:
        await WebhookForwarder(make_config()).send(make_event(), ctx)
    assert not isinstance(info.value, TargetGone)
    assert len(requests_of(ctx)) == 1


def echoing(status: int) -> Handler:
    """A handler answering `status` with the request's URL and Authorization header."""
    return lambda r: HttpResponse(status, body=f"{r.url} {r.headers['Authorization']}".encode())


async def test_send_masks_secrets_the_endpoint_echoes() -> None:
    """An endpoint quoting the URL or a credential header back gets them masked."""
    config = make_config(headers={"Authorization": "Bearer tok-123"})
    outcome = await WebhookForwarder(config).send(make_event(), context(echoing(200)))
    assert outcome == Delivered(200, "*** ***")


async def test_failure_excerpt_masks_secrets_the_endpoint_echoes() -> None:
    """A refusal quoting the URL or a credential header back has them masked too."""
    config = make_config(headers={"Authorization": "Bearer tok-123"})
    with pytest.raises(PermanentFailure) as info:
        await WebhookForwarder(config).send(make_event(), context(echoing(400)))
    assert info.value.excerpt == "*** ***"


async def test_send_410_disables_the_forwarder() -> None:
    """HTTP 410 raises TargetGone naming the forwarder, without any secret."""
    ctx = context(lambda r: HttpResponse(410, body=b"unsubscribed"))
    with pytest.raises(TargetGone, match="410 Gone") as info:
        await WebhookForwarder(make_config()).send(make_event(), ctx)
    assert "'hook'" in info.value.reason and "disabled" in info.value.reason
    assert info.value.status_code == 410
    assert info.value.excerpt == "unsubscribed"
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
async def test_send_transient_statuses_retry(status: int) -> None:
    """408, 429 and 5xx are retried."""
    ctx = context(lambda r: HttpResponse(status))
    with pytest.raises(RetryLater) as info:
        await WebhookForwarder(make_config()).send(make_event(), ctx)
    assert info.value.status_code == status
    assert info.value.at is None


async def test_send_429_honours_retry_after_seconds() -> None:
    """Retry-After in seconds sets when to retry."""
    ctx = context(lambda r: HttpResponse(429, {"Retry-After": "120"}))
    with pytest.raises(RetryLater) as info:
        await WebhookForwarder(make_config()).send(make_event(), ctx)
    assert info.value.at == NOW + timedelta(seconds=120)


async def test_send_503_honours_retry_after_http_date() -> None:
    """Retry-After as an HTTP date sets when to retry."""
    ctx = context(lambda r: HttpResponse(503, {"Retry-After": "Wed, 01 May 2024 13:00:00 GMT"}))
    with pytest.raises(RetryLater) as info:
        await WebhookForwarder(make_config()).send(make_event(), ctx)
    assert info.value.at == datetime(2024, 5, 1, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
async def test_send_other_4xx_are_permanent(status: int) -> None:
    """Other client errors are permanent and not a target-gone."""
    ctx = context(lambda r: HttpResponse(status, body=b'{"error": "bad"}'))
    with pytest.raises(PermanentFailure) as info:
        await WebhookForwarder(make_config()).send(make_event(), ctx)
    assert not isinstance(info.value, TargetGone)
    assert info.value.status_code == status
    assert info.value.excerpt == '{"error": "bad"}'


@pytest.mark.parametrize("error", [ConnectionRefusedError("refused"), TimeoutError()])
async def test_send_network_errors_and_timeouts_retry(error: Exception) -> None:
    """A refused connection or a timeout is retried."""
    with pytest.raises(RetryLater, match="webhook"):
        await WebhookForwarder(make_config()).send(make_event(), context(raising(error)))


async def test_send_uses_the_context_delivery_id_and_time() -> None:
    """send() signs with context.delivery_id and context.now, for every event type."""
    for event_type in ("deployment.started", "build.created", "release.created"):
        ctx = context(lambda r: HttpResponse(204), delivery_id="dlv_9")
        await WebhookForwarder(make_config()).send(make_event(event_type), ctx)
        (request,) = requests_of(ctx)
        assert request == build_request(make_config(), make_event(event_type), "dlv_9", NOW)
        assert request.json()["type"] == event_type
