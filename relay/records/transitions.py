"""Use case: move a deployment along its lifecycle (PATCH, Cloud66 cancel, Retrace)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from relay.auth import Principal
from relay.errors import NotFound, ValidationFailed
from relay.ids import new_id
from relay.models import (
    Deployment,
    InputDatetime,
    MetaData,
    ShortText,
    Status,
    event_payload,
)
from relay.records.lifecycle import InvalidTransition, check_transition
from relay.records.service import RecordService, check_slug, parse_body
from relay.store.base import NewEvent
from relay.store.lifecycle_base import TransitionCommand
from relay.timeutil import utcnow

log = structlog.get_logger("relay.transitions")

# What a status change may set besides the status (identity fields never change).
CHANGEABLE = (
    "result",
    "finished_at",
    "host",
    "code_name",
    "commit_sha",
    "committed_at",
    "branch",
    "tag",
)
# Only a deployment that ends has a result and a finish time.
TERMINAL_ONLY = ("result", "finished_at")


class TransitionIn(BaseModel):
    """Body of `PATCH /components/{slug}/deployments/{id}`."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    status: Status = Field(description="The new lifecycle status (see the README's diagram).")
    result: ShortText | None = Field(
        default=None, description="Terminal statuses only; defaults to the status' name."
    )
    finished_at: InputDatetime | None = Field(
        default=None, description="Terminal statuses only; defaults to now."
    )
    host: Annotated[str, StringConstraints(max_length=255)] | None = None
    code_name: ShortText | None = None
    commit_sha: ShortText | None = None
    committed_at: InputDatetime | None = Field(
        default=None, description="When the deployed commit was made (DORA lead time)."
    )
    branch: ShortText | None = None
    tag: ShortText | None = None
    meta_data: MetaData | None = Field(
        default=None, description="Merged into the deployment's meta_data, key by key."
    )


def changes_of(body: TransitionIn) -> dict[str, Any]:
    """The fields a PATCH body sets (absent ones are left as they are)."""
    found = {name: getattr(body, name) for name in CHANGEABLE if getattr(body, name) is not None}
    if body.meta_data is not None:
        found["meta_data"] = body.meta_data
    if not body.status.terminal:
        wrong = [name for name in TERMINAL_ONLY if name in found]
        if wrong:
            raise ValidationFailed(
                "only a terminal status takes a result or a finish time",
                details=[
                    {"field": name, "message": f"not allowed with status {body.status.value!r}"}
                    for name in wrong
                ],
            )
    return found


def moved(current: Deployment, target: Status, changes: dict[str, Any]) -> Deployment:
    """`current` after moving to `target` with `changes` (pure)."""
    now = utcnow()
    update: dict[str, Any] = {**changes, "status": target, "updated_at": now}
    if "meta_data" in changes:
        update["meta_data"] = {**current.meta_data, **changes["meta_data"]}
    if target.terminal:
        update.setdefault("finished_at", now)
        if current.result is None:
            update.setdefault("result", target.value)
    return current.model_copy(update={**update, "deliveries": None, "is_live": False})


@dataclass
class TransitionService:
    """Status changes, each one event through the outbox (optimistic on the status)."""

    records: RecordService

    async def patch(
        self, component: str, record_id: str, fields: dict[str, Any], principal: Principal
    ) -> tuple[Deployment, list[str]]:
        """Apply a PATCH body; the updated deployment and warnings about ignored fields."""
        current = await self._load(component, record_id, principal)
        body, warnings = parse_body(TransitionIn, fields)
        return await self.move(current, body.status, changes_of(body)), warnings

    async def cancel(self, component: str, record_id: str, principal: Principal) -> Deployment:
        """Cloud66's DELETE: end a deployment in progress as `aborted`."""
        current = await self._load(component, record_id, principal)
        return await self.move(current, Status.ABORTED, {})

    async def _load(self, component: str, record_id: str, principal: Principal) -> Deployment:
        check_slug(component)
        principal.require("events:write", component)
        found = await self.records.store.get_record("deployment", component, record_id)
        if found is None:
            raise NotFound(f"no deployment {record_id!r} in component {component!r}")
        return found

    async def move(
        self, current: Deployment, target: Status, changes: dict[str, Any]
    ) -> Deployment:
        """Check and durably apply `current → target`; InvalidTransition (409) when the
        lifecycle forbids it or a concurrent change got there first."""
        event_type = check_transition(current.status, target)
        record = moved(current, target, changes)
        event = NewEvent(
            id=new_id(), type=event_type, created_at=record.updated_at, data=event_payload(record)
        )
        command = TransitionCommand(
            record=record,
            expected=current.status,
            event=event,
            deliveries=self.records.planner(event, record),
        )
        stored = await self.records.store.transition(command)
        if stored is None:
            raise await self._lost_race(current, target)
        self.records.notify(event)
        log.info(
            "deployment_status_changed",
            deployment_id=record.id,
            component=record.component,
            previous=current.status.value,
            status=target.value,
            event_type=event_type,
            is_rollback=stored.is_rollback,
        )
        # Read back with its deliveries summary, as every single-deployment answer has it.
        fresh = await self.records.store.get_record("deployment", record.component, record.id)
        return (await self.records.with_live([fresh or stored]))[0]

    async def _lost_race(self, current: Deployment, target: Status) -> Exception:
        now = await self.records.store.get_record("deployment", current.component, current.id)
        if now is None:
            return NotFound(f"deployment {current.id!r} no longer exists")
        return InvalidTransition(
            now.status,
            target,
            f"the deployment changed while this request was handled: it is now "
            f"{now.status.value!r}",
        )
