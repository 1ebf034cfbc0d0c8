"""Use case: the Cloud66 v3 deployments dialect (`/api/3/stacks/{stack_id}/deployments`).

A Cloud66 *stack* is a relay component (`stack_id` is its slug) and a deployment's
integer `id` is relay's `number`. relay records deployments, it does not run them: a
POST records one in status `queued`, which the pipeline then moves along (relay's
PATCH, or another dialect); DELETE cancels it (`aborted`).

Code tables (relay's own: Cloud66's documents show only `0 web`, `1 success`, `0 build`):

- outcome: 0 `in progress` (queued, building, pushing, starting), 1 `success`,
  2 `failed` (build-error, crashed-error, timeout-error), 3 `cancelled` (aborted).
- triggered_via: 0 `web`, 1 `api`, 2 `hook`, 3 `cli`; `meta_data.triggered_via` may name
  one, otherwise `api` (every deployment reaches relay through its API).
- deploy_type: 0 `build` (a version deployed), 1 `rollback` (a version that had been live
  before, see `is_rollback`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from relay.auth import Principal
from relay.errors import NotFound
from relay.models import Deployment, Status
from relay.records.service import RecordService, check_slug, commit_of, parse_query
from relay.records.transitions import TransitionService
from relay.store.base import ListQuery

OUTCOMES = {0: "in progress", 1: "success", 2: "failed", 3: "cancelled"}
TRIGGERED_VIA = {0: "web", 1: "api", 2: "hook", 3: "cli"}
DEPLOY_TYPES = {0: "build", 1: "rollback"}
_FAILED = {Status.BUILD_ERROR, Status.CRASHED_ERROR, Status.TIMEOUT_ERROR}
PER_PAGE = 30
MAX_PER_PAGE = 100
Param = Annotated[str, StringConstraints(max_length=200)]


class DeployParams(BaseModel):
    """Query parameters of `POST /api/3/stacks/{stack_id}/deployments` (Cloud66's)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    git_ref: Param | None = Field(
        default=None,
        description="Branch, tag or hash: the version (and the commit when it is a hash). "
        "Absent: the stack's latest version is deployed again.",
    )
    services: Annotated[str, StringConstraints(max_length=2000)] | None = Field(
        default=None, description="Kept as meta_data.services."
    )
    deployment_profile: Param | None = Field(
        default=None, description="Kept as meta_data.deployment_profile."
    )
    user_reference: Annotated[str, StringConstraints(max_length=255)] | None = Field(
        default=None, description="Kept as meta_data.user_reference (at most 255 characters)."
    )


class PageParams(BaseModel):
    """Query parameters of the Cloud66 listing."""

    page: int = Field(default=1, ge=1, le=1_000_000)
    per_page: int = Field(default=PER_PAGE, ge=1, le=MAX_PER_PAGE)


def _coded(table: dict[int, str], code: int) -> dict[str, Any]:
    return {"code": code, "meaning": table[code]}


def outcome_code(status: Status) -> int:
    """The outcome code of a status."""
    if not status.terminal:
        return 0
    if status == Status.SUCCESS:
        return 1
    return 2 if status in _FAILED else 3


def via_code(meta: dict[str, Any]) -> int:
    """The triggered_via code: meta_data.triggered_via when it names one, else `api`."""
    named = meta.get("triggered_via")
    by_name = {name: code for code, name in TRIGGERED_VIA.items()}
    return by_name.get(named, 1) if isinstance(named, str) else 1


def _time(value: datetime | None) -> str | None:
    # Cloud66 answers whole seconds with a Z.
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(meta: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        if isinstance(value := meta.get(key), str) and value:
            return value
    return None


def deployment_view(d: Deployment, is_head: bool) -> dict[str, Any]:
    """A relay deployment as Cloud66 shows one (pure)."""
    meta = d.meta_data
    return {
        "id": d.number,
        "triggered_by": _text(meta, "email", "user_id") or d.triggered_by,
        "triggered_via": _coded(TRIGGERED_VIA, via_code(meta)),
        "started_at": _time(d.started_at),
        "finished_at": _time(d.finished_at),
        "outcome": _coded(OUTCOMES, outcome_code(d.status)),
        "git_hash": d.commit_sha,
        "deploy_session": d.id,
        "deploy_type": _coded(DEPLOY_TYPES, 1 if d.is_rollback else 0),
        "is_head": is_head,
        "is_live": d.is_live,
        "reverted": True if d.reverted else None,
        "reverted_by": d.reverted_by,
        "reverted_at": _time(d.reverted_at),
        "is_deploying": d.is_deploying,
        "commit_url": _text(meta, "commit_url", "uri"),
    }


def pagination(page: int, per_page: int, total: int) -> dict[str, Any]:
    """Cloud66's `pagination` block."""
    pages = max(1, -(-total // per_page))
    return {
        "previous": page - 1 if 1 < page <= pages + 1 else None,
        "next": page + 1 if page < pages else None,
        "current": page,
        "per_page": per_page,
        "count": total,
        "pages": pages,
    }


def number_of(text: str) -> int:
    """A Cloud66 deployment id from a path; NotFound when it is no positive integer."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) < 1:
        raise NotFound(
            f"no deployment {text!r}: Cloud66 deployment ids are whole numbers from 1 "
            "(relay's `number`), of at most 18 digits"
        )
    return int(text)


@dataclass
class Cloud66Service:
    """Cloud66's four deployment operations on top of the record use cases."""

    records: RecordService
    transitions: TransitionService

    async def get(self, stack: str, number: int, principal: Principal) -> dict[str, Any]:
        """One deployment as Cloud66 shows it."""
        d = await self._load(stack, number, principal, "events:read")
        (d,) = await self.records.with_live([d])
        return deployment_view(d, await self._is_head(d))

    async def page(
        self, stack: str, params: PageParams, principal: Principal
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of the stack's deployments (newest first) and their total."""
        found = await self.records.numbered_page(stack, params.page, params.per_page, principal)
        items = await self.records.with_live(found.items)
        # One read per stage on the page, not one per deployment.
        heads = {stage: await self._head_id(stack, stage) for stage in {d.stage for d in items}}
        return [deployment_view(d, heads[d.stage] == d.id) for d in items], found.total

    async def deploy(self, stack: str, query: dict[str, Any], principal: Principal) -> Deployment:
        """Record a queued deployment from Cloud66's query parameters."""
        # Cloud66 sends these in the query string: say so, not "the request body".
        params = parse_query(DeployParams, query)
        check_slug(stack)
        principal.require("events:write", stack)
        meta = {k: v for k, v in params.model_dump().items() if k != "git_ref" and v is not None}
        version = params.git_ref or await self._latest_version(stack)
        fields: dict[str, Any] = {"version": version, "status": Status.QUEUED.value}
        if commit := commit_of(params.git_ref):
            fields["commit_sha"] = commit
        if params.git_ref:
            meta["git_ref"] = params.git_ref
        fields["meta_data"] = {**meta, "triggered_via": "api"}
        result = await self.records.record("deployment", stack, fields, principal)
        return await self.records.get("deployment", stack, result.answer.body["id"], principal)

    async def cancel(self, stack: str, number: int, principal: Principal) -> Deployment:
        """Cancel (abort) a deployment in progress; 409 when it already ended."""
        d = await self._load(stack, number, principal, "events:write")
        return await self.transitions.cancel(stack, d.id, principal)

    async def _load(self, stack: str, number: int, principal: Principal, scope: str) -> Deployment:
        check_slug(stack)
        principal.require(scope, stack)
        found = await self.records.store.deployment_by_number(stack, number)
        if found is None:
            raise NotFound(f"no deployment {number} in stack {stack!r}")
        return found

    async def _head_id(self, stack: str, stage: str | None) -> str | None:
        page = await self.records.store.list_records(
            ListQuery(kind="deployment", component=stack, stage=stage, limit=1)
        )
        return page.items[0].id if page.items else None

    async def _is_head(self, d: Deployment) -> bool:
        # The stack's newest deployment to its stage (Cloud66: the stack's head).
        return await self._head_id(d.component, d.stage) == d.id

    async def _latest_version(self, stack: str) -> str:
        # A POST without git_ref redeploys what the stack last deployed.
        found = await self.records.store.numbered_page(stack, 0, 1)
        return found.items[0].version if found.items else "HEAD"
