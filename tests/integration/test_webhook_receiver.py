"""The webhook forwarder over real HTTP to a Standard Webhooks consumer.

Signatures are checked by the `standardwebhooks` package inside the receiver,
never by relay's own signing code.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from forwarders.base import Event, PermanentFailure, RetryLater, SendContext, TargetGone
from forwarders.webhook import WebhookConfig, WebhookForwarder
from relay.delivery.http import AiohttpTransport
from relay.standins.base import Fault
from relay.standins.webhook import WebhookReceiver
from tests.forwarder_support import deployment_event, post_raw, send_context, serving

NEW_SECRET = "whsec_" + base64.b64encode(b"the-new-secret-after-rotation!").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"the-old-secret-before-rotation").decode()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    """A consumer that knows only the new secret, serving on loopback."""
    async with serving(WebhookReceiver(NEW_SECRET)) as recv:
        yield recv


def make_event(event_type: str = "deployment.completed") -> Event:
    """A finished production deployment of `api`."""
    note = {"note": 'quoted "value"\nsecond line'}
    return deployment_event(event_type, component="api", version="1.4.2", meta_data=note)


def forwarder(url: str, **changes: Any) -> WebhookForwarder:
    """A webhook forwarder signing with the new secret."""
    raw = {"name": "hook", "type": "webhook", "url": url, "secret": NEW_SECRET, **changes}
    return WebhookForwarder(WebhookConfig.model_validate(raw))


def context(
    transport: AiohttpTransport, delivery_id: str = "dlv_1", *, now: datetime | None = None
) -> SendContext:
    """A send context at the real current time (the consumer checks freshness)."""
    return send_context(transport, delivery_id=delivery_id, now=now)


async def test_delivers_a_signed_envelope(
    receiver: WebhookReceiver, transport: AiohttpTransport
) -> None:
    """The consumer verifies the signature and records the envelope."""
    event = make_event()
    outcome = await forwarder(receiver.endpoint).send(event, context(transport))
    assert outcome.status_code == 200
    (accepted,) = receiver.events
    assert accepted.msg_id == "dlv_1"
    assert accepted.payload == event.envelope()
    (request,) = receiver.received
    assert request.headers["User-Agent"].startswith("relay/")
    assert request.headers["Idempotency-Key"] == "dlv_1"
    assert request.headers["webhook-signature"].startswith("v1,")


@pytest.mark.parametrize("receiver_secret", [OLD_SECRET, NEW_SECRET])
async def test_rotation_verifies_with_either_secret_alone(
    receiver_secret: str, transport: AiohttpTransport
) -> None:
    """Signing with new + previous secret satisfies consumers knowing only one of them."""
    async with serving(WebhookReceiver(receiver_secret)) as recv:
        hook = forwarder(recv.endpoint, previous_secrets=[OLD_SECRET])
        await hook.send(make_event(), context(transport))
    assert len(recv.events) == 1
    assert len(recv.received[0].headers["webhook-signature"].split(" ")) == 2


async def test_a_consumer_with_another_secret_rejects(transport: AiohttpTransport) -> None:
    """An unknown secret is a 401 from the consumer, a permanent failure for relay."""
    other = "whsec_" + base64.b64encode(b"somebody-else").decode()
    async with serving(WebhookReceiver(other)) as recv:
        with pytest.raises(PermanentFailure) as info:
            await forwarder(recv.endpoint).send(make_event(), context(transport))
    assert info.value.status_code == 401
    assert NEW_SECRET not in str(info.value) and NEW_SECRET not in info.value.excerpt
    assert recv.events == []


async def test_retry_keeps_the_webhook_id(
    receiver: WebhookReceiver, transport: AiohttpTransport
) -> None:
    """After a 500, the retry carries the same webhook-id with a fresh timestamp."""
    receiver.faults.append(Fault(500, {"error": "boom"}))
    hook = forwarder(receiver.endpoint)
    first = datetime.now(UTC)
    with pytest.raises(RetryLater):
        await hook.send(make_event(), context(transport, "dlv_7", now=first))
    await hook.send(make_event(), context(transport, "dlv_7", now=first + timedelta(seconds=3)))
    ids = [r.headers["webhook-id"] for r in receiver.received]
    stamps = [int(r.headers["webhook-timestamp"]) for r in receiver.received]
    assert ids == ["dlv_7", "dlv_7"]
    assert stamps[1] - stamps[0] == 3
    assert [e.msg_id for e in receiver.events] == ["dlv_7"]


async def test_redelivery_is_deduplicated_by_the_consumer(
    receiver: WebhookReceiver, transport: AiohttpTransport
) -> None:
    """Sending twice with one delivery id is acknowledged twice but recorded once."""
    hook = forwarder(receiver.endpoint)
    await hook.send(make_event(), context(transport, "dlv_2"))
    await hook.send(make_event(), context(transport, "dlv_2"))
    assert len(receiver.accepted) == 2
    assert len(receiver.events) == 1
    assert receiver.duplicates == ["dlv_2"]


async def test_templated_body_is_verified(transport: AiohttpTransport) -> None:
    """A custom template's bytes are what is signed; escaping survives the trip."""
    template = '{"text": "{component} {version}", "note": "{meta_data[note]}"}'
    async with serving(WebhookReceiver(NEW_SECRET, envelope=False)) as recv:
        hook = forwarder(recv.endpoint, body_template=template)
        await hook.send(make_event(), context(transport))
    assert recv.events[0].payload == {
        "text": "api 1.4.2",
        "note": 'quoted "value"\nsecond line',
    }


async def test_410_disables(receiver: WebhookReceiver, transport: AiohttpTransport) -> None:
    """A 410 from the endpoint is TargetGone."""
    receiver.faults.append(Fault(410, {"error": "gone"}))
    with pytest.raises(TargetGone):
        await forwarder(receiver.endpoint).send(make_event(), context(transport))


async def test_429_retry_after(receiver: WebhookReceiver, transport: AiohttpTransport) -> None:
    """A 429 with Retry-After is retried no sooner than asked."""
    receiver.faults.append(Fault(429, {"error": "slow down"}, {"Retry-After": "90"}))
    ctx = context(transport)
    with pytest.raises(RetryLater) as info:
        await forwarder(receiver.endpoint).send(make_event(), ctx)
    assert info.value.at == ctx.now + timedelta(seconds=90)


async def test_redirect_is_not_followed(
    receiver: WebhookReceiver, transport: AiohttpTransport
) -> None:
    """A 302 to a valid endpoint is a permanent failure and only one request is made."""
    receiver.faults.append(Fault(302, None, {"Location": receiver.endpoint}))
    with pytest.raises(PermanentFailure, match="redirect"):
        await forwarder(receiver.endpoint).send(make_event(), context(transport))
    assert len(receiver.received) == 1
    assert receiver.events == []


async def test_timeout_retries(receiver: WebhookReceiver, transport: AiohttpTransport) -> None:
    """An endpoint slower than the timeout is retried."""
    receiver.faults.append(Fault(200, {}, delay=0.5))
    ctx = context(transport)
    ctx.timeout = 0.1
    with pytest.raises(RetryLater, match="did not answer"):
        await forwarder(receiver.endpoint).send(make_event(), ctx)


async def test_unreachable_endpoint_retries(transport: AiohttpTransport) -> None:
    """A refused connection is retried."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RetryLater, match="could not reach webhook"):
        await forwarder(f"http://127.0.0.1:{port}/hook").send(make_event(), context(transport))


# --- the consumer is strict: requests posted at it directly ------------------


def signed(body: bytes, *, msg_id: str = "m1", at: datetime | None = None) -> dict[str, str]:
    """Headers signed by the reference package for `body` at `at` (default now)."""
    when = at or datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(NEW_SECRET).sign(msg_id, when, body.decode()),
        "Content-Type": "application/json",
    }


ENVELOPE = b'{"type":"deployment.created","timestamp":"2024-05-01T12:00:00.000Z","data":{}}'


def tampered(headers: dict[str, str], **changes: str) -> dict[str, str]:
    """`headers` with some values replaced."""
    return {**headers, **changes}


def minutes_ago(minutes: int) -> datetime:
    """The current time shifted `minutes` into the past (negative: future)."""
    return datetime.now(UTC) - timedelta(minutes=minutes)


# Built when the test runs, not at collection: the consumer checks freshness.
CASES: dict[str, tuple[Callable[[], tuple[bytes, dict[str, str]]], int]] = {
    "valid": (lambda: (ENVELOPE, signed(ENVELOPE)), 200),
    "unsigned": (lambda: (ENVELOPE, {"Content-Type": "application/json"}), 401),
    "body-changed": (lambda: (ENVELOPE + b" ", signed(ENVELOPE)), 401),
    "id-changed": (lambda: (ENVELOPE, tampered(signed(ENVELOPE), **{"webhook-id": "m2"})), 401),
    "wrong-signature": (
        lambda: (ENVELOPE, tampered(signed(ENVELOPE), **{"webhook-signature": "v1,AAAA"})),
        401,
    ),
    "malformed-signature": (
        lambda: (ENVELOPE, tampered(signed(ENVELOPE), **{"webhook-signature": "garbage"})),
        401,
    ),
    "stale": (lambda: (ENVELOPE, signed(ENVELOPE, at=minutes_ago(10))), 401),
    "future": (lambda: (ENVELOPE, signed(ENVELOPE, at=minutes_ago(-10))), 401),
    "text-content-type": (
        lambda: (ENVELOPE, tampered(signed(ENVELOPE), **{"Content-Type": "text/plain"})),
        415,
    ),
    "invalid-json": (lambda: (b"{not json", signed(b"{not json")), 400),
    "not-an-envelope": (
        lambda: (b'{"type":"x","data":{}}', signed(b'{"type":"x","data":{}}')),
        400,
    ),
    "not-an-object": (lambda: (b"[1]", signed(b"[1]")), 400),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_consumer_rejects_what_a_standard_webhooks_consumer_rejects(
    receiver: WebhookReceiver, case: str
) -> None:
    """Missing/invalid/stale signatures → 401, bad media type → 415, bad payload → 400."""
    build, status = CASES[case]
    body, headers = build()
    answered, answer = await post_raw(receiver.endpoint, body, headers=headers)
    assert answered == status
    assert len(receiver.events) == (1 if status == 200 else 0)
    assert ("error" in answer) == (status != 200)
