"""Sentry: create a release, then a deploy of it to the deployment's environment.

Two steps, each recorded in `context.state` once it succeeded, so a retry after
the release step goes straight to the deploy, and a deploy (not idempotent on
Sentry's side) is never sent twice for one delivery.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr, field_validator

from forwarders.base import (
    Delivered,
    Event,
    ForwarderConfig,
    HttpRequest,
    HttpResponse,
    Outcome,
    PermanentFailure,
    SendContext,
    Skipped,
    check_response,
    send_raw,
)
from forwarders.common import (
    ConfiguredForwarder,
    Placeholder,
    fill,
    lookup,
    stray_brace,
    unknown_placeholder,
    url_secrets,
)
from relay.timeutil import format_wire, to_utc

# Sentry asks for 429 and 502/503/504 to be retried and calls other 4xx permanent; a
# 500 is retried too. 409 means "commits are being processed" on the release endpoint
# only: try again later.
SENTRY_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RELEASE_RETRY_STATUSES = SENTRY_RETRY_STATUSES | {409}
MAX_VERSION = 200
MAX_ENVIRONMENT = 64
MAX_DEPLOY_NAME = 64
MAX_URL = 200
_BAD_VERSION_CHARS = frozenset("/\\\n\r\t\f")
_RESERVED_VERSIONS = frozenset({".", "..", "latest"})
_BAD_ENVIRONMENT_CHARS = frozenset("/\n\r\f")
TEMPLATE_FIELDS = ("component", "version", "stage")

Plan = Literal["release", "release+deploy"]


class TemplateError(ValueError):
    """A template is malformed, or the event lacks a value it needs."""


def check_template(template: str) -> None:
    """Raise TemplateError unless `template` only uses the documented fields."""
    if stray_brace(template):
        raise TemplateError(
            f"malformed template {template!r}: a brace is neither doubled nor part of a "
            "field (no format specs, conversions or attributes)"
        )
    unknown = unknown_placeholder(template, TEMPLATE_FIELDS)
    if unknown is not None:
        raise TemplateError(
            f"unknown template field {unknown.token}: use {{component}}, {{version}}, "
            "{stage} or {meta_data[key]}"
        )


def render_template(template: str, data: dict[str, Any]) -> str:
    """Fill `template` from a deployment; TemplateError names any missing value.

    Only plain field names are looked up (no attribute access or indexing beyond
    `meta_data[key]`), so a template cannot reach into Python objects.
    """
    check_template(template)

    def value(placeholder: Placeholder) -> str:
        found = lookup(data, placeholder)
        if found is None or found == "":
            raise TemplateError(
                f"the template needs {placeholder.token}, which this event does not have"
            )
        if not isinstance(found, str | int | float):
            raise TemplateError(f"template field {placeholder.token} is not a string or number")
        return str(found)

    return fill(template, value)


def version_problem(version: str) -> str | None:
    """Why Sentry would refuse `version` as a release name, or None when it is valid."""
    if not version.strip():
        return "the release version is empty"
    if len(version) > MAX_VERSION:
        return f"the release version is longer than {MAX_VERSION} characters"
    if _BAD_VERSION_CHARS & set(version):
        return "the release version contains '/', '\\', a newline or a tab"
    if version.lower() in _RESERVED_VERSIONS:
        return f"{version!r} is reserved by Sentry and cannot name a release"
    return None


def environment_problem(environment: str) -> str | None:
    """Why Sentry would refuse `environment` for a deploy, or None when it is valid."""
    if len(environment) > MAX_ENVIRONMENT:
        return f"the stage is longer than {MAX_ENVIRONMENT} characters"
    if _BAD_ENVIRONMENT_CHARS & set(environment):
        return "the stage contains '/' or a newline"
    return None


class SentryConfig(ForwarderConfig):
    """Keys of a `type = "sentry"` forwarder."""

    url: str = Field(default="https://sentry.io", pattern=r"^https?://\S+$")
    token: SecretStr
    org: str = Field(min_length=1)
    projects: list[str] = Field(min_length=1)
    release: str = "{component}@{version}"
    repository: str | None = None

    @field_validator("release")
    @classmethod
    def _valid_template(cls, value: str) -> str:
        check_template(value)
        return value

    def secrets(self) -> list[str]:
        """The auth token, for log redaction."""
        return [self.token.get_secret_value(), *url_secrets(self.url or "")]


def plan_for(event: Event) -> Plan | Skipped:
    """Which steps an event calls for, or why it does not apply to Sentry."""
    status = event.data.get("status")
    if event.type == "build.created":
        if status != "success":
            return Skipped(f"build status is {status!r}: no Sentry release for a failed build")
        return "release"
    if event.type not in ("deployment.created", "deployment.completed"):
        return Skipped(f"Sentry is only told about finished deployments, not {event.type}")
    if status != "success":
        return Skipped(f"deployment status is {status!r}: Sentry only records successful deploys")
    if not event.stage:
        return Skipped("the deployment has no stage: a Sentry deploy needs an environment")
    return "release+deploy"


def _api(config: SentryConfig) -> str:
    return f"{config.url.rstrip('/')}/api/0/organizations/{quote(config.org, safe='')}"


def _headers(config: SentryConfig, delivery_id: str) -> dict[str, str]:
    # Sentry has no idempotency header; Idempotency-Key is ignored but helps tracing.
    return {
        "Authorization": f"Bearer {config.token.get_secret_value()}",
        "Idempotency-Key": delivery_id,
    }


def _wire_time(value: Any) -> str | None:
    if not value:
        return None
    try:
        return format_wire(to_utc(datetime.fromisoformat(str(value))))
    except ValueError:
        return None  # relay wrote this field itself; an odd value is just left out


def build_release_request(
    config: SentryConfig, event: Event, version: str, delivery_id: str
) -> HttpRequest:
    """`POST /api/0/organizations/{org}/releases/` for `version`."""
    data = event.data
    body: dict[str, Any] = {"version": version, "projects": list(config.projects)}
    commit = data.get("commit_sha")
    if config.repository and commit:
        body["refs"] = [{"repository": config.repository, "commit": commit}]
    url = (data.get("meta_data") or {}).get("url")
    if isinstance(url, str) and 0 < len(url) <= MAX_URL:
        body["url"] = url  # a longer link would make Sentry refuse the whole release
    if data.get("kind", "deployment") == "deployment":
        released = _wire_time(data.get("finished_at"))
        if released:
            body["dateReleased"] = released
    return HttpRequest.json_request(
        "POST", f"{_api(config)}/releases/", body, _headers(config, delivery_id)
    )


def build_deploy_request(
    config: SentryConfig, event: Event, version: str, delivery_id: str
) -> HttpRequest:
    """`POST /api/0/organizations/{org}/releases/{version}/deploys/` for the event's stage."""
    data = event.data
    name = str(data.get("code_name") or version)[:MAX_DEPLOY_NAME]
    body: dict[str, Any] = {
        "environment": event.stage,
        "name": name,
        "projects": list(config.projects),
    }
    for key, field in (("dateStarted", "started_at"), ("dateFinished", "finished_at")):
        value = _wire_time(data.get(field))
        if value:
            body[key] = value
    url = f"{_api(config)}/releases/{quote(version, safe='')}/deploys/"
    return HttpRequest.json_request("POST", url, body, _headers(config, delivery_id))


def release_version(config: SentryConfig, event: Event) -> str:
    """The release name for `event`; PermanentFailure when it is missing or invalid."""
    try:
        version = render_template(config.release, event.data)
    except TemplateError as exc:
        raise PermanentFailure(f"cannot name the Sentry release: {exc}") from None
    problem = version_problem(version)
    if problem:
        raise PermanentFailure(f"cannot name the Sentry release {version[:80]!r}: {problem}")
    return version


def check_sentry_response(response: HttpResponse, context: SendContext, step: str) -> None:
    """Raise RetryLater/PermanentFailure per Sentry's rules for a non-2xx answer."""
    what = f"Sentry ({step})"
    if response.status == 404 and step == "deploy":
        what = "Sentry (deploy: the release does not exist)"
    retry = RELEASE_RETRY_STATUSES if step == "release" else SENTRY_RETRY_STATUSES
    check_response(response, context.now, retry_statuses=retry, what=what)


class SentryForwarder(ConfiguredForwarder[SentryConfig]):
    """Creates a Sentry release and, for deployments, a deploy to the stage's environment."""

    type: ClassVar[str] = "sentry"
    Config: ClassVar[builtins.type[ForwarderConfig]] = SentryConfig

    async def send(self, event: Event, context: SendContext) -> Outcome:
        """Run the steps this event needs that earlier attempts did not finish."""
        plan = plan_for(event)
        if isinstance(plan, Skipped):
            return plan
        if plan == "release+deploy":
            problem = environment_problem(event.stage or "")
            if problem:
                raise PermanentFailure(f"cannot create a Sentry deploy: {problem}")
        state = context.state
        # A retry reuses the version of the release it already created.
        version = state.get("version") or release_version(self.config, event)
        status: int | None = None
        if not state.get("release_done"):
            request = build_release_request(self.config, event, version, context.delivery_id)
            response = await send_raw(request, context, what="Sentry")
            check_sentry_response(response, context, "release")
            state.update(release_done=True, version=version)
            status = response.status
        if plan == "release+deploy" and not state.get("deploy_done"):
            request = build_deploy_request(self.config, event, version, context.delivery_id)
            response = await send_raw(request, context, what="Sentry")
            check_sentry_response(response, context, "deploy")
            state["deploy_done"] = True
            status = response.status
        return Delivered(status_code=status, excerpt=f"release {version}")
