"""Use case: the Stackify Retrace dialect (start, complete, cancel a deployment).

Retrace names a deployment by (AppName, EnvironmentName, Version) and never by id:
relay maps AppName to a component slug and EnvironmentName to a stage by the rules of
relay/records/names.py (spaces, dots and capitals welcome; matched case-insensitively;
two names that would share a slug answer 409), Version to the version, and each call
acts on the latest deployment recorded with those three values. The names as sent are
kept in the deployment's meta_data (`AppName`, `EnvironmentName`).

- start: records a new deployment in status `building` (event `deployment.started`);
  409 when the latest one with those values is still in progress.
- complete: moves it to `success`; cancel: to `aborted`. 409 when none was ever
  started, or when it already ended (completed or cancelled). Name, Branch, Commit and
  Uri sent with them fill what start left empty (see details_missing).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from relay.auth import Principal
from relay.errors import Conflict, IdempotencyConflict, NotFound
from relay.models import Deployment, ShortText, Status
from relay.models import Version as VersionText
from relay.records.lifecycle import InvalidTransition
from relay.records.names import component_named, slug_of, stage_named
from relay.records.service import RecordService, parse_body
from relay.records.transitions import TransitionService

START_STATUS = Status.BUILDING
Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class RetraceIn(BaseModel):
    """Body of `POST /api/v1/deployments/start|complete|cancel` (Retrace field names)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    AppName: Text = Field(
        description="The application, e.g. `Foo App`: the component is its slug (`foo-app`); "
        "matched case-insensitively."
    )
    EnvironmentName: Text = Field(
        description="The environment, e.g. `QA 2`: the stage, as first sent; matched "
        "case-insensitively."
    )
    Version: VersionText
    Name: ShortText | None = Field(default=None, description="code_name; defaults to Version.")
    Branch: ShortText | None = None
    Commit: ShortText | None = Field(default=None, description="commit_sha.")
    Uri: Annotated[str, StringConstraints(max_length=2048)] | None = Field(
        default=None, description="Kept as meta_data.uri."
    )


class NotStarted(Conflict):
    """complete/cancel of a deployment that no start announced."""

    code = "deployment_not_started"


def _describe(body: RetraceIn) -> str:
    return f"{body.AppName} {body.Version} to {body.EnvironmentName}"


def start_key(component: str, stage: str, version: str, latest: Deployment | None) -> str:
    """The idempotency key of a start (pure): the same for every start of these values
    until a deployment of them is recorded, which changes `latest`."""
    parts = "\x1f".join((component, stage, version, latest.id if latest else ""))
    return "retrace-start:" + hashlib.sha256(parts.encode()).hexdigest()


def details_missing(current: Deployment, body: RetraceIn) -> dict[str, Any]:
    """What a complete or cancel body adds (pure): Retrace's "Deployment Completed" call
    may carry Name, Branch, Commit and Uri. They fill what start left empty and never
    overwrite what it sent; Name replaces only the default code_name (the Version)."""
    changes: dict[str, Any] = {}
    if body.Name and body.Name != body.Version and current.code_name in (None, current.version):
        changes["code_name"] = body.Name
    if body.Branch and not current.branch:
        changes["branch"] = body.Branch
    if body.Commit and not current.commit_sha:
        changes["commit_sha"] = body.Commit
    if body.Uri and "uri" not in current.meta_data:
        changes["meta_data"] = {"uri": body.Uri}
    return changes


@dataclass
class RetraceService:
    """Retrace's three commands on top of the record and transition use cases."""

    records: RecordService
    transitions: TransitionService

    async def start(self, fields: dict[str, Any], principal: Principal) -> Deployment:
        """Record a deployment in progress; Conflict when the same one already is."""
        body, component, stage = await self._resolve(fields, principal)
        latest = await self.records.store.latest_of_version(component, stage, body.Version)
        if latest is not None and not latest.status.terminal:
            raise InvalidTransition(
                latest.status,
                START_STATUS,
                f"a deployment of {_describe(body)} is already in progress "
                f"(status {latest.status.value!r}): complete or cancel it first",
            )
        record: dict[str, Any] = {
            "version": body.Version,
            "stage": stage,
            "code_name": body.Name or body.Version,
            "branch": body.Branch,
            "commit_sha": body.Commit,
            "status": START_STATUS.value,
        }
        meta: dict[str, Any] = {"AppName": body.AppName, "EnvironmentName": body.EnvironmentName}
        if body.Uri:
            meta["uri"] = body.Uri
        record["meta_data"] = meta
        fields = {k: v for k, v in record.items() if v is not None}
        # Starts that race past the check above share one idempotency key (the store
        # keeps only the first), so at most one deployment of these values is in progress.
        key = start_key(component, stage, body.Version, latest)
        try:
            result = await self.records.record(
                "deployment", component, fields, principal, idempotency_key=key
            )
        except IdempotencyConflict:
            result = None
        if result is None or result.replayed:
            raise InvalidTransition(
                START_STATUS,
                START_STATUS,
                f"a deployment of {_describe(body)} is already in progress "
                "(another start came at the same moment): complete or cancel it first",
            )
        return await self.records.get("deployment", component, result.answer.body["id"], principal)

    async def complete(self, fields: dict[str, Any], principal: Principal) -> Deployment:
        """End the started deployment as `success`."""
        return await self._finish(fields, principal, Status.SUCCESS, "completed")

    async def cancel(self, fields: dict[str, Any], principal: Principal) -> Deployment:
        """End the started deployment as `aborted`."""
        return await self._finish(fields, principal, Status.ABORTED, "cancelled")

    async def _finish(
        self, fields: dict[str, Any], principal: Principal, target: Status, verb: str
    ) -> Deployment:
        body, component, stage = await self._resolve(fields, principal)
        latest = await self.records.store.latest_of_version(component, stage, body.Version)
        if latest is None:
            raise NotStarted(
                f"no deployment of {_describe(body)} was started, so it cannot be {verb}: "
                "call /api/v1/deployments/start first"
            )
        if latest.status.terminal:
            ended = "cancelled" if latest.status == Status.ABORTED else "completed"
            raise InvalidTransition(
                latest.status,
                target,
                f"the deployment of {_describe(body)} was already {ended} "
                f"(status {latest.status.value!r}), so it cannot be {verb}",
            )
        return await self.transitions.move(latest, target, details_missing(latest, body))

    async def _resolve(
        self, fields: dict[str, Any], principal: Principal
    ) -> tuple[RetraceIn, str, str]:
        """The body, its component and its stage; the token (and strict_components) are
        checked before any name is kept, so that a refused request leaves nothing behind."""
        body, _ = parse_body(RetraceIn, fields)
        store, slug = self.records.store, slug_of(body.AppName)
        principal.require("events:write", slug or None)
        if slug and self.records.strict_components and not await store.component_exists(slug):
            raise NotFound(f"component {slug!r} does not exist (strict_components is on)")
        component = await component_named(store, body.AppName, "AppName")
        stage = await stage_named(store, component.slug, body.EnvironmentName)
        return body, component.slug, stage.slug
