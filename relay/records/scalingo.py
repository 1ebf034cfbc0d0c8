"""Use case: the Scalingo v1 deployments dialect (`/v1/apps/{app}/deployments…`).

A Scalingo *app* is a relay component (`app` and `app_id` are its slug); deployment ids
are relay's. relay's statuses are Scalingo's already. `git_ref` is the commit when
known, else the version; `pusher` comes from `meta_data.pusher` (`{email, id,
username}`) when a client sent one, else `username` is `meta_data.user_id` or the
token's name, `email` is `meta_data.email`, and `id` is the token's name.
`image_size` and `stack_base_image` are `meta_data`'s when sent, else null: relay
builds no images.

A POST records a deployment in status `building` (the pipeline then moves it along
with relay's PATCH and appends its output log); `git_ref` is its version (and its
commit when it is a hash), `source_url` is kept in `meta_data`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from relay.auth import Principal
from relay.errors import NotFound, ValidationFailed
from relay.models import Deployment, Status
from relay.records.outputs import OutputService
from relay.records.service import RecordService, check_slug, commit_of, parse_body
from relay.timeutil import format_wire

PER_PAGE = 20
MAX_PER_PAGE = 100


class TriggerIn(BaseModel):
    """The `deployment` object of a POST."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    git_ref: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None, description="The version deployed (and its commit when it is a hash)."
    )
    source_url: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = Field(
        default=None, description="The archive deployed; kept as meta_data.source_url."
    )


class ScalingoTriggerIn(BaseModel):
    """Body of `POST /v1/apps/{app}/deployments` (Scalingo's)."""

    model_config = ConfigDict(extra="ignore")

    deployment: TriggerIn


class ScalingoPageParams(BaseModel):
    """Query parameters of the Scalingo listing."""

    page: int = Field(default=1, ge=1, le=1_000_000)
    per_page: int = Field(default=PER_PAGE, ge=1, le=MAX_PER_PAGE)


def git_ref_of(d: Deployment) -> str:
    """What Scalingo calls the git reference of a deployment."""
    return d.commit_sha or d.version


def _pusher(d: Deployment) -> dict[str, Any]:
    meta = d.meta_data
    given = meta.get("pusher")
    sent: dict[str, Any] = given if isinstance(given, dict) else {}
    username = meta.get("user_id") if isinstance(meta.get("user_id"), str) else None
    email = meta.get("email") if isinstance(meta.get("email"), str) else None
    return {
        "email": sent.get("email", email),
        "id": sent.get("id", d.triggered_by),
        "username": sent.get("username", username or d.triggered_by),
    }


def _duration(d: Deployment) -> int:
    if d.started_at is None or d.finished_at is None:
        return 0
    return max(0, round((d.finished_at - d.started_at).total_seconds()))


def deployment_view(d: Deployment, base_url: str) -> dict[str, Any]:
    """A relay deployment as Scalingo shows one (pure); `base_url` is relay's own."""
    meta = d.meta_data
    view: dict[str, Any] = {
        "id": d.id,
        "app_id": d.component,
        "created_at": format_wire(d.created_at),
        "finished_at": format_wire(d.finished_at) if d.finished_at else None,
        "status": d.status.value,
        "git_ref": git_ref_of(d),
        "previous_git_ref": meta.get("previous_git_ref"),
        "duration": _duration(d),
        "image_size": meta.get("image_size"),
        "stack_base_image": meta.get("stack_base_image"),
        "pusher": _pusher(d),
        "links": {
            "output": f"{base_url}/v1/apps/{d.component}/deployments/{d.id}/output",
        },
    }
    if "source_url" in meta:
        view["type"] = "archive"
    return view


def pagination(page: int, per_page: int, total: int) -> dict[str, Any]:
    """Scalingo's `meta.pagination` block."""
    pages = max(1, -(-total // per_page))
    return {
        "current_page": page,
        "prev_page": page - 1 if 1 < page <= pages + 1 else None,
        "next_page": page + 1 if page < pages else None,
        "total_pages": pages,
        "total_count": total,
    }


def _version_of(body: TriggerIn) -> str:
    if body.git_ref:
        return body.git_ref
    if body.source_url:
        # An archive with no git_ref: the archive's file name says what is deployed.
        name = urlsplit(body.source_url).path.rstrip("/").rsplit("/", 1)[-1]
        return (name or body.source_url)[:200]
    raise ValidationFailed(
        "a deployment needs a git_ref or a source_url",
        details=[{"field": "deployment.git_ref", "message": "give git_ref or source_url"}],
    )


@dataclass
class ScalingoService:
    """Scalingo's deployment operations on top of the record and output use cases."""

    records: RecordService
    outputs: OutputService

    async def page(
        self, app: str, params: ScalingoPageParams, principal: Principal
    ) -> tuple[list[Deployment], int]:
        """One page of the app's deployments (newest first) and their total."""
        found = await self.records.numbered_page(app, params.page, params.per_page, principal)
        return found.items, found.total

    async def get(self, app: str, deployment_id: str, principal: Principal) -> Deployment:
        """One deployment of the app."""
        return await self.records.get("deployment", app, deployment_id, principal)

    async def trigger(self, app: str, fields: dict[str, Any], principal: Principal) -> Deployment:
        """Record a deployment in status `building` from Scalingo's body."""
        body, _ = parse_body(ScalingoTriggerIn, fields)
        check_slug(app)
        principal.require("events:write", app)
        trigger = body.deployment
        version = _version_of(trigger)
        meta: dict[str, Any] = {}
        previous = await self.records.store.numbered_page(app, 0, 1)
        if previous.items:
            meta["previous_git_ref"] = git_ref_of(previous.items[0])
        if trigger.source_url:
            meta["source_url"] = trigger.source_url
        record: dict[str, Any] = {
            "version": version,
            "status": Status.BUILDING.value,
            "meta_data": meta,
        }
        if commit := commit_of(trigger.git_ref):
            record["commit_sha"] = commit
        result = await self.records.record("deployment", app, record, principal)
        return await self.records.get("deployment", app, result.answer.body["id"], principal)

    async def output(self, app: str, deployment_id: str, principal: Principal) -> str:
        """The deployment's output log as text."""
        return await self.outputs.read(app, deployment_id, principal)

    async def app(self, app: str, principal: Principal) -> dict[str, Any]:
        """The app's facts (without links, which depend on the request)."""
        check_slug(app)
        principal.require("events:read", app)
        store = self.records.store
        if not await store.component_exists(app):
            raise NotFound(f"no app {app!r}: relay knows a component once it was deployed")
        latest = await store.numbered_page(app, 0, 1)
        last = latest.items[0] if latest.items else None
        first = (await store.numbered_page(app, latest.total - 1, 1)).items if last else []
        return {
            "id": app,
            "name": app,
            "created_at": format_wire(first[0].created_at) if first else None,
            "last_deployed_at": format_wire(last.occurred_at) if last else None,
            "last_deployment_id": last.id if last else None,
        }
