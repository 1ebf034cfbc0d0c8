"""Bugsnag: report each successful deployment or build to the Build API.

One `POST {url}/` per event; the `apiKey` field authenticates (no auth header).
Bugsnag ties errors to releases by `appVersion` and `releaseStage`, so only
events that put a version live (status `success`) are reported.
"""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar, Literal, get_args
from urllib.parse import urlsplit

from pydantic import ConfigDict, SecretStr, field_validator

from forwarders.base import (
    Delivered,
    Event,
    ForwarderConfig,
    HttpRequest,
    HttpResponse,
    Outcome,
    SendContext,
    Skipped,
    send_raw,
)
from forwarders.base import check_response as _check
from forwarders.common import BaseUrl, ConfiguredForwarder, mask, masking, url_secrets

DEFAULT_URL = "https://build.bugsnag.com"
# API keys of projects on InsightHub (SmartBear's instance) begin with this, and their
# builds go to its own Build API host.
INSIGHTHUB_KEY_PREFIX = "00000"
INSIGHTHUB_URL = "https://build.bugsnag.smartbear.com"
Provider = Literal[
    "github", "github-enterprise", "bitbucket", "bitbucket-server", "gitlab", "gitlab-onpremise"
]
PROVIDERS: frozenset[str] = frozenset(get_args(Provider))
HANDLED_EVENTS = frozenset({"deployment.created", "deployment.completed", "build.created"})
_KNOWN_HOSTS = {"github.com": "github", "gitlab.com": "gitlab", "bitbucket.org": "bitbucket"}
_API_KEY = re.compile(r"^[0-9a-fA-F]{32}$")
# `git@github.com:org/repo.git`: scp-like syntax, which urlsplit does not parse.
_SCP_LIKE = re.compile(r"^[\w.-]+@([\w.-]+):")


class BugsnagConfig(ForwarderConfig):
    """Keys of a `type = "bugsnag"` forwarder (DESIGN §8)."""

    # The API key must never be echoed back in a validation error.
    model_config = ConfigDict(hide_input_in_errors=True)

    url: BaseUrl | None = None
    api_key: SecretStr
    repository: str | None = None
    provider: Provider | None = None
    builder_name: str | None = None

    @field_validator("api_key")
    @classmethod
    def _hex_key(cls, value: SecretStr) -> SecretStr:
        if not _API_KEY.match(value.get_secret_value()):
            raise ValueError("api_key must be the project's 32 hexadecimal characters")
        return value

    @property
    def base_url(self) -> str:
        """The `url` override, else the Build API host of the key's instance."""
        if self.url is not None:
            return self.url
        key = self.api_key.get_secret_value()
        return INSIGHTHUB_URL if key.startswith(INSIGHTHUB_KEY_PREFIX) else DEFAULT_URL

    def secrets(self) -> list[str]:
        """The project API key."""
        return [self.api_key.get_secret_value(), *url_secrets(self.url or "")]


def repository_host(repository: str) -> str | None:
    """The host name of a repository URL (https://, ssh:// or git@host:path)."""
    scp = _SCP_LIKE.match(repository)
    host = scp.group(1) if scp else urlsplit(repository).hostname
    if not host:
        return None
    host = host.lower()
    return host[4:] if host.startswith("www.") else host


def source_provider(config: BugsnagConfig) -> str | None:
    """The configured provider, else the one of a well-known repository host, else None."""
    if config.provider is not None:
        return config.provider
    if config.repository is None:
        return None
    host = repository_host(config.repository)
    return _KNOWN_HOSTS.get(host) if host else None


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def flatten(value: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted key, string) pairs of a nested object: Bugsnag metadata values are strings."""
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            yield from flatten(item, f"{name}.")
        else:
            yield name, _as_text(item)


def metadata(data: dict[str, Any]) -> dict[str, str]:
    """meta_data flattened, plus the deployment's branch, tag and host when present."""
    result = dict(flatten(data.get("meta_data") or {}))
    for key in ("branch", "tag", "host"):
        if data.get(key):
            result[key] = str(data[key])
    return result


def builder_name(config: BugsnagConfig, data: dict[str, Any]) -> str:
    """Who built it: the configured name, else meta_data.user_id, else "relay"."""
    if config.builder_name:
        return config.builder_name
    user = (data.get("meta_data") or {}).get("user_id")
    return str(user) if user not in (None, "") else "relay"


def build_payload(config: BugsnagConfig, event: Event) -> dict[str, Any]:
    """The Build API body for `event` (TARGETS.md "Bugsnag — Build API")."""
    data = event.data
    body: dict[str, Any] = {
        "apiKey": config.api_key.get_secret_value(),
        "appVersion": str(data["version"]),
        "builderName": builder_name(config, data),
    }
    if data.get("stage"):
        body["releaseStage"] = str(data["stage"])
    provider = source_provider(config)
    if config.repository and provider and data.get("commit_sha"):
        body["sourceControl"] = {
            "provider": provider,
            "repository": config.repository,
            "revision": str(data["commit_sha"]),
        }
    meta = metadata(data)
    if meta:
        body["metadata"] = meta
    return body


def build_request(config: BugsnagConfig, event: Event, delivery_id: str) -> HttpRequest:
    """`POST {url}/` with the build as JSON and no auth header."""
    return HttpRequest.json_request(
        "POST",
        f"{config.base_url}/",
        build_payload(config, event),
        {"Idempotency-Key": delivery_id},
    )


def skip_reason(event: Event) -> str | None:
    """Why `event` is not reported to Bugsnag, or None when it is."""
    if event.type not in HANDLED_EVENTS:
        return f"Bugsnag builds are not reported for {event.type}"
    if event.data.get("status") != "success":
        return f"not a successful release (status {event.data.get('status')})"
    if not event.data.get("version"):
        return "no version to report"
    return None


def check_response(response: HttpResponse, now: datetime, api_key: str = "") -> None:
    """Retry 408/429/5xx; any other 4xx is permanent. The key is masked in excerpts."""
    # A 400 may quote the body back, and the body carries the API key.
    with masking([api_key]):
        _check(response, now, what="Bugsnag")


def warnings(response: HttpResponse, api_key: str = "") -> str:
    """The warnings of a 200 answer, joined on one line ("" when none), key masked."""
    payload = response.json()
    found = payload.get("warnings") if isinstance(payload, dict) else None
    return mask("; ".join(map(str, found)), [api_key]) if isinstance(found, list) else ""


class BugsnagForwarder(ConfiguredForwarder[BugsnagConfig]):
    """Reports releases to Bugsnag's Build API."""

    type: ClassVar[str] = "bugsnag"
    Config: ClassVar[builtins.type[ForwarderConfig]] = BugsnagConfig

    async def send(self, event: Event, context: SendContext) -> Outcome:
        """Report the build, or skip events that put no version live."""
        reason = skip_reason(event)
        if reason is not None:
            return Skipped(reason)
        request = build_request(self.config, event, context.delivery_id)
        response = await send_raw(request, context, what="Bugsnag")
        key = self.config.api_key.get_secret_value()
        check_response(response, context.now, key)
        return Delivered(response.status, warnings(response, key))
