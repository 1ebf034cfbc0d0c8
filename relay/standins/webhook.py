"""A Standard Webhooks consumer: verifies signatures with the `standardwebhooks` package.

It deliberately uses the reference package rather than relay's own signing
code, so a test passing against it proves interoperability, not agreement of
relay with itself. Like a well-behaved consumer it deduplicates on
`webhook-id`: a redelivery is acknowledged but not recorded twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from relay.standins.base import Receiver, Rejected, parse_json

EVENT_TYPES = frozenset(
    {
        "deployment.created",
        "deployment.started",
        "deployment.status_changed",
        "deployment.completed",
        "deployment.cancelled",
        "build.created",
        "release.created",
    }
)


@dataclass(frozen=True)
class WebhookEvent:
    """One accepted delivery: its `webhook-id`, `webhook-timestamp` and JSON payload."""

    msg_id: str
    timestamp: int
    payload: Any


class WebhookReceiver(Receiver):
    """Accepts `POST {path}` signed with `secret`; `envelope=False` for templated bodies."""

    name = "webhook"

    def __init__(self, secret: str, *, path: str = "/hook", envelope: bool = True) -> None:
        super().__init__()
        self.webhook = Webhook(secret)
        self.path = path
        self.envelope = envelope
        self.events: list[WebhookEvent] = []
        self.duplicates: list[str] = []

    @property
    def endpoint(self) -> str:
        """The full URL to configure as the forwarder's `url` (after `start`)."""
        return self.url + self.path

    def routes(self) -> list[web.RouteDef]:
        """The single webhook endpoint."""
        return [web.post(self.path, self.wrap(self._handle))]

    async def _handle(self, request: web.Request, body: bytes) -> tuple[int, Any]:
        self._verify(request, body)
        if request.content_type != "application/json":
            raise Rejected(415, {"error": "expected Content-Type: application/json"})
        payload = parse_json(body, {"error": "the body is not valid JSON"})
        if self.envelope:
            _check_envelope(payload)
        msg_id = request.headers["webhook-id"]
        if any(e.msg_id == msg_id for e in self.events):
            self.duplicates.append(msg_id)
            return 200, {"received": True, "duplicate": True}
        timestamp = int(request.headers["webhook-timestamp"])
        self.events.append(WebhookEvent(msg_id, timestamp, payload))
        return 200, {"received": True}

    def _verify(self, request: web.Request, body: bytes) -> None:
        try:
            self.webhook.verify(body, dict(request.headers), json_parse=False)
        except WebhookVerificationError as exc:
            # Missing headers, no matching signature, timestamp outside the tolerance.
            raise Rejected(401, {"error": str(exc)}) from None
        except ValueError:
            # A malformed signature entry or a body that is not UTF-8.
            raise Rejected(401, {"error": "Invalid Signature Headers"}) from None


def _check_envelope(payload: Any) -> None:
    """Rejected(400) unless `payload` is `{"type", "timestamp", "data"}` of a known type."""
    if not isinstance(payload, dict):
        raise Rejected(400, {"error": "the body must be a JSON object"})
    if payload.get("type") not in EVENT_TYPES:
        raise Rejected(400, {"error": f"unknown event type {payload.get('type')!r}"})
    if not isinstance(payload.get("timestamp"), str):
        raise Rejected(400, {"error": "timestamp must be an ISO-8601 string"})
    if not isinstance(payload.get("data"), dict):
        raise Rejected(400, {"error": "data must be an object"})
