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

import structlog
from pydantic import Field, SecretStr, field_validator

from forwarders.answers import shorten
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
    mask,
    stray_brace,
    strict_web_url,
    unknown_placeholder,
    url_secrets,
)
from relay.timeutil import format_wire, to_utc

log = structlog.get_logger("relay.forwarders.sentry")

# Sentry asks for 429 and 502/503/504 to be retried and calls other 4xx permanent; a
# 500 is retried too. 409 means "commits are being processed" on the release endpoint
# only: try again later.
SENTRY_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RELEASE_RETRY_STATUSES = SENTRY_RETRY_STATUSES | {409}
MAX_VERSION = 200
MAX_ENVIRONMENT = 64
MAX_DEPLOY_NAME = 64
MAX_URL = 200
MAX_COMMIT = 64
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
    # Sentry compares the stripped version: " latest" and ".. " are reserved too.
    if version.strip().lower() in _RESERVED_VERSIONS:
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


def release_refs(config: SentryConfig, data: dict[str, Any]) -> list[dict[str, str]] | None:
    """The `refs` linking the release to its commit, when Sentry would accept them."""
    commit = data.get("commit_sha")
    if not config.repository or not isinstance(commit, str) or not commit:
        return None
    if len(commit) > MAX_COMMIT:
        return None  # Sentry refuses a longer commit id, and a cut one names no commit
    return [{"repository": config.repository, "commit": commit}]


def refs_left_out(config: SentryConfig, data: dict[str, Any]) -> str | None:
    """Why the configured repository's commit is not linked to the release, if it is not."""
    commit = data.get("commit_sha")
    if config.repository and isinstance(commit, str) and len(commit) > MAX_COMMIT:
        return f"the commit id is longer than Sentry's {MAX_COMMIT} characters"
    return None


def refused_refs(response: HttpResponse) -> str | None:
    """Sentry's reason when it refused the release's `refs` (a repository not set up in the
    organisation): a 400 `{"refs": ["Invalid repository names: …"]}`, given after the
    release itself was created. None for any other answer."""
    body = response.json() if response.status == 400 else None
    if not isinstance(body, dict) or set(body) != {"refs"}:
        return None
    reasons = body["refs"]
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        return None  # field errors of the refs themselves: nothing was created
    return shorten("; ".join(reasons))


def build_release_request(
    config: SentryConfig, event: Event, version: str, delivery_id: str
) -> HttpRequest:
    """`POST /api/0/organizations/{org}/releases/` for `version`."""
    data = event.data
    body: dict[str, Any] = {"version": version, "projects": list(config.projects)}
    linked = release_refs(config, data)
    if linked:
        body["refs"] = linked
    # Sentry refuses the whole release over a link it does not take for a URL.
    url = strict_web_url((data.get("meta_data") or {}).get("url"), MAX_URL)
    if url:
        body["url"] = url
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
            status = await self._release(event, context, version)
        if plan == "release+deploy" and not state.get("deploy_done"):
            request = build_deploy_request(self.config, event, version, context.delivery_id)
            response = await send_raw(request, context, what="Sentry")
            check_sentry_response(response, context, "deploy")
            state["deploy_done"] = True
            status = response.status
        excerpt = f"release {version}"
        left_out = state.get("refs_refused") or refs_left_out(self.config, event.data)
        if left_out:
            excerpt += f"; commit not linked: {left_out}"
        return Delivered(status_code=status, excerpt=excerpt)

    async def _release(self, event: Event, context: SendContext, version: str) -> int:
        """Create the release; a refused commit link leaves it created, without the link."""
        request = build_release_request(self.config, event, version, context.delivery_id)
        response = await send_raw(request, context, what="Sentry")
        refused = refused_refs(response)
        if refused is None:
            check_sentry_response(response, context, "release")
        else:
            # The release exists (Sentry checks the repository after creating it): go on
            # to the deploy, and tell why the commit is not linked.
            refused = mask(refused, self.config.secrets())
            context.state["refs_refused"] = f"Sentry refused the repository ({refused})"
            log.warning(
                "sentry_commit_not_linked",
                forwarder=self.config.name,
                delivery_id=context.delivery_id,
                repository=self.config.repository,
                reason=refused,
            )
        context.state.update(release_done=True, version=version)
        return response.status
