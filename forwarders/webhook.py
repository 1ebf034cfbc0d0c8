"""Custom webhooks signed per the Standard Webhooks specification.

`POST {url}` with the event envelope (or a templated body) as JSON, and the
`webhook-id`, `webhook-timestamp` and `webhook-signature` headers. During a
secret rotation every configured secret signs, so a receiver that still has
the old secret and one that already has the new one both verify the request.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import hmac
import json
import math
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from forwarders.base import (
    Delivered,
    Event,
    ForwarderConfig,
    SendContext,
    TargetGone,
    check_response,
    send_raw,
)
from forwarders.common import (
    MIN_SECRET_PART,
    ConfiguredForwarder,
    Placeholder,
    fill,
    link,
    lookup,
    mask,
    masking,
    short_sha,
    summary,
    unknown_placeholder,
    url_secrets,
)
from relay.delivery.http import JSON_HEADERS, HttpRequest, json_body

SECRET_PREFIX = "whsec_"
# The Standard Webhooks specification asks for secrets of 24 to 64 random bytes.
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
# Headers relay computes itself: a static header may not replace them.
RESERVED_HEADERS = frozenset(
    {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "content-type",
        "content-length",
        "host",
        "transfer-encoding",
        "idempotency-key",
        "user-agent",
    }
)
BUILTIN_TEMPLATES = ("slack", "teams")
FIELDS = (
    "component",
    "version",
    "stage",
    "result",
    "status",
    "type",
    "commit_sha",
    "branch",
    "tag",
    "host",
    "code_name",
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Header names whose values are credentials (e.g. `Authorization = "Bearer …"`).
_SENSITIVE_HEADER = re.compile(r"auth|token|key|secret|signature|password|cookie", re.I)


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret; ValueError if it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX!r}")
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        # Unpadded base64 is common in generated secrets: pad before strict decoding.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the part after {SECRET_PREFIX!r} is not valid base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"a webhook secret must decode to {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random "
            f"bytes (Standard Webhooks); this one decodes to {len(key)}"
        )
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64 HMAC-SHA256>` entry over `{msg_id}.{timestamp}.{body}`."""
    return _signature([secret_key(secret)], msg_id, timestamp, body)


def _signature(keys: list[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one entry per (decoded) key, space-separated."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        [f"v1,{base64.b64encode(hmac.digest(k, signed, 'sha256')).decode()}" for k in keys]
    )


class WebhookConfig(ForwarderConfig):
    """`[[forwarders]]` keys of a webhook (DESIGN §8)."""

    url: str
    secret: SecretStr
    previous_secrets: list[SecretStr] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)
    body_template: str | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("url must be an absolute http:// or https:// URL")
        try:
            parts.port  # noqa: B018  (parsing it is the check)
        except ValueError:
            raise ValueError("url has an invalid port") from None
        return value

    @field_validator("secret")
    @classmethod
    def _valid_secret(cls, value: SecretStr) -> SecretStr:
        secret_key(value.get_secret_value())
        return value

    @field_validator("previous_secrets")
    @classmethod
    def _valid_previous(cls, values: list[SecretStr]) -> list[SecretStr]:
        for value in values:
            secret_key(value.get_secret_value())
        return values

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by relay and cannot be overridden")
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"the value of header {name!r} contains a line break")
        return headers

    @field_validator("body_template")
    @classmethod
    def _valid_template(cls, value: str | None) -> str | None:
        if value is None or value in BUILTIN_TEMPLATES:
            return value
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise ValueError(
                f"body_template must be 'slack', 'teams' or a JSON template: {exc}"
            ) from None
        if not isinstance(parsed, dict | list):
            raise ValueError("a JSON body_template must be an object or an array")
        _walk_strings(parsed, _check_placeholders)
        return value

    def signing_secrets(self) -> list[str]:
        """The current secret first, then the previous ones still accepted by receivers."""
        return [self.secret.get_secret_value()] + [
            s.get_secret_value() for s in self.previous_secrets
        ]

    def secrets(self) -> list[str]:
        """Signing secrets, credential-like header values and the URL with each of its
        secret-bearing parts (Slack and Teams webhook URLs are credentials themselves;
        a target may echo only the path, a query value or the Basic credential)."""
        headers = [v for k, v in self.headers.items() if _SENSITIVE_HEADER.search(k)]
        # `Bearer <token>`: a target may quote the credential without its scheme.
        credentials = [v.split(None, 1)[1] for v in headers if len(v.split(None, 1)) == 2]
        return [
            *self.signing_secrets(),
            *headers,
            *(c for c in credentials if len(c) >= MIN_SECRET_PART),
            *url_secrets(self.url, whole=True),
        ]


def _check_placeholders(text: str) -> str:
    unknown = unknown_placeholder(text, FIELDS)
    if unknown is not None:
        known = ", ".join(f"{{{f}}}" for f in FIELDS)
        raise ValueError(f"unknown placeholder {unknown.token}; use {known} or {{meta_data[key]}}")
    return text


def _walk_strings(value: Any, fn: Callable[[str], str]) -> Any:
    """`value` with `fn` applied to every string inside it (keys left as they are)."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: _walk_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk_strings(v, fn) for v in value]
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def substitute(text: str, event: Event) -> str:
    """`text` with its placeholders replaced by the event's values (absent → "")."""

    def value(placeholder: Placeholder) -> str:
        if placeholder.name == "type":
            return event.type
        return _text(lookup(event.data, placeholder))

    return fill(text, value)


def render_template(template: str, event: Event) -> Any:
    """The JSON payload of a custom template.

    The template is parsed first and values go into its strings, so quotes or
    newlines in a value are JSON-escaped on output and can never break the body.
    """
    return _walk_strings(json.loads(template), lambda s: substitute(s, event))


def _facts(event: Event) -> list[tuple[str, str]]:
    data = event.data
    pairs = [
        ("Component", data.get("component")),
        ("Version", data.get("version")),
        ("Stage", data.get("stage")),
        ("Result", data.get("result")),
        ("Status", data.get("status")),
        ("Commit", short_sha(data.get("commit_sha"), 12)),
        ("Branch", data.get("branch")),
        ("Host", data.get("host")),
    ]
    return [(name, str(value)) for name, value in pairs if value]


def _slack_escape(text: str) -> str:
    # Slack reads &, < and > as markup: user values must not form links or mentions.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(event: Event) -> dict[str, Any]:
    """A Slack incoming-webhook message (also accepted by Mattermost and Rocket.Chat)."""
    text = _slack_escape(summary(event))
    url = link(event.data)
    if url:
        text += f" <{_slack_escape(url)}|details>"
    return {"text": text}


def teams_message(event: Event) -> dict[str, Any]:
    """A Teams message with an Adaptive Card, as Teams Workflows webhooks expect."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": summary(event), "weight": "Bolder", "wrap": True},
        {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in _facts(event)]},
    ]
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    url = link(event.data)
    if url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Details", "url": url}]
    attachment = {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
    return {"type": "message", "attachments": [attachment]}


def render_body(template: str | None, event: Event) -> Any:
    """The JSON payload to send: the envelope, a built-in message or a custom template."""
    if template is None:
        return event.envelope()
    if template == "slack":
        return slack_message(event)
    if template == "teams":
        return teams_message(event)
    return render_template(template, event)


# Bodies encoded lately, by event and template: an event goes to every webhook
# forwarder, and its body need not be encoded again for each.
BODY_CACHE_SIZE = 1024
_BodyKey = tuple[str, str, datetime, str | None]
_bodies: dict[_BodyKey, tuple[dict[str, Any], bytes]] = {}


def encoded_body(template: str | None, event: Event) -> bytes:
    """render_body() as the JSON bytes sent; the same bytes for the same event and template."""
    key = (event.id, event.type, event.created_at, template)
    hit = _bodies.get(key)
    # The data is compared too, so that an id reused with other data gets its own body.
    if hit is not None and hit[0] == event.data:
        return hit[1]
    body = json_body(render_body(template, event))
    if len(_bodies) >= BODY_CACHE_SIZE:
        del _bodies[next(iter(_bodies))]  # the oldest
    _bodies[key] = (event.data, body)
    return body


def build_request(
    config: WebhookConfig, event: Event, delivery_id: str, now: datetime
) -> HttpRequest:
    """The signed POST: the signature covers the body bytes exactly as they are sent."""
    keys = [secret_key(s) for s in config.signing_secrets()]
    return _signed(config, base_headers(config), keys, event, delivery_id, now)


def base_headers(config: WebhookConfig) -> dict[str, str]:
    """The headers every request of this webhook has, before the per-delivery ones."""
    return {**JSON_HEADERS, **config.headers}


def _signed(
    config: WebhookConfig,
    base: dict[str, str],
    keys: list[bytes],
    event: Event,
    delivery_id: str,
    now: datetime,
) -> HttpRequest:
    body = encoded_body(config.body_template, event)
    timestamp = math.floor(now.timestamp())
    headers = {
        **base,
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": _signature(keys, delivery_id, timestamp, body),
        "Idempotency-Key": delivery_id,
    }
    return HttpRequest("POST", config.url, headers, body)


class WebhookForwarder(ConfiguredForwarder[WebhookConfig]):
    """Delivers every event to one Standard Webhooks endpoint."""

    type: ClassVar[str] = "webhook"
    Config: ClassVar[builtins.type[ForwarderConfig]] = WebhookConfig
    # send() awaits one transport call and nothing else (see Forwarder).
    one_request: ClassVar[bool] = True

    def __init__(self, config: WebhookConfig) -> None:
        super().__init__(config)
        self._secrets = config.secrets()  # masked in whatever the target answers
        # The same for every request: taken from the config once, not per send.
        self._keys = [secret_key(s) for s in config.signing_secrets()]
        self._base_headers = base_headers(config)

    async def send(self, event: Event, context: SendContext) -> Delivered:
        """POST the signed event; 410 disables the forwarder, 3xx is never followed."""
        request = _signed(
            self.config, self._base_headers, self._keys, event, context.delivery_id, context.now
        )
        response = await send_raw(request, context, what="webhook")
        # An echoing endpoint could quote the URL or a credential header back.
        excerpt = mask(response.text(), self._secrets)
        if 200 <= response.status < 300:
            return Delivered(response.status, excerpt)
        if response.status == 410:
            raise TargetGone(
                "webhook endpoint answered HTTP 410 Gone: it asks not to be called again, "
                f"so forwarder {self.config.name!r} is disabled",
                status_code=410,
                excerpt=excerpt,
            )
        with masking(self._secrets):
            check_response(response, context.now, what="webhook")
        return Delivered(response.status, excerpt)
