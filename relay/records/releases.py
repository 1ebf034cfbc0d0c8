"""Use case: releases, named groups of deployments (any components) meant for humans."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from relay.auth import Principal
from relay.errors import NotFound, ValidationFailed
from relay.ids import new_id
from relay.models import Deployment, ShortText, UtcDatetime, event_payload
from relay.records.service import RecordService, parse_body
from relay.store.base import Cursor, NewEvent
from relay.store.lifecycle_base import ReleaseCommand, ReleaseRow
from relay.timeutil import utcnow

log = structlog.get_logger("relay.releases")

MAX_DEPLOYMENTS = 100
EVENT_TYPE = "release.created"


class ReleaseIn(BaseModel):
    """Body of `POST /releases`."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    code_name: ShortText | None = None
    notes: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    deployments: list[str] = Field(
        min_length=1,
        max_length=MAX_DEPLOYMENTS,
        description="Ids of the deployments it groups (any components), in display order.",
    )


class Release(BaseModel):
    """A release as the API returns it."""

    id: str
    name: str
    code_name: str | None = None
    notes: str | None = None
    triggered_by: str | None = Field(default=None, description="Name of the token that sent it.")
    created_at: UtcDatetime
    deployments: list[Deployment]


@dataclass(frozen=True)
class ReleaseListing:
    """A page of releases and where the next one starts."""

    items: list[Release]
    next_cursor: Cursor | None


def _release(row: ReleaseRow) -> Release:
    return Release(
        id=row.id,
        name=row.name,
        code_name=row.code_name,
        notes=row.notes,
        triggered_by=row.triggered_by,
        created_at=row.created_at,
        deployments=[d.model_copy(update={"deliveries": None}) for d in row.deployments],
    )


def event_data(release: Release) -> dict[str, Any]:
    """The `release.created` payload: the release, its deployments and their components.
    It has no `component`, `stage` or `result`: only `match` patterns of "*" accept it."""
    data = release.model_dump(mode="json", exclude={"deployments"})
    data["deployments"] = [event_payload(d) for d in release.deployments]
    data["components"] = sorted({d.component for d in release.deployments})
    return data


@dataclass
class ReleaseService:
    """Creates releases (one `release.created` event each) and reads them back."""

    records: RecordService

    async def create(
        self, fields: dict[str, Any], principal: Principal
    ) -> tuple[Release, list[str]]:
        """Validate and durably record a release with its event and deliveries."""
        principal.require("events:write")
        body, warnings = parse_body(ReleaseIn, fields)
        ids = list(dict.fromkeys(body.deployments))
        found = await self.records.store.deployments_by_ids(ids)
        # A deployment of a component the token may not touch is answered exactly as
        # one that does not exist: a different answer would tell that the id exists.
        unknown = [i for i in ids if i not in found or not principal.can_access(found[i].component)]
        if unknown:
            raise ValidationFailed(
                "unknown deployment ids",
                details=[
                    {"field": "deployments", "message": f"no deployment {i!r}"} for i in unknown
                ],
            )
        now = utcnow()
        release = Release(
            id=new_id(),
            name=body.name,
            code_name=body.code_name,
            notes=body.notes,
            triggered_by=principal.name,
            created_at=now,
            deployments=[found[i] for i in ids],
        )
        event = NewEvent(id=new_id(), type=EVENT_TYPE, created_at=now, data=event_data(release))
        command = ReleaseCommand(
            id=release.id,
            name=release.name,
            code_name=release.code_name,
            notes=release.notes,
            triggered_by=release.triggered_by,
            created_at=now,
            deployment_ids=ids,
            event=event,
            deliveries=self.records.planner(event, release.deployments[0]),
        )
        await self.records.store.record_release(command)
        self.records.notify(event)
        log.info("release_created", release_id=release.id, deployments=len(ids))
        return await self._with_live(release), warnings

    async def get(self, release_id: str, principal: Principal) -> Release:
        """One release; NotFound also when the token may not see all of its components."""
        principal.require("events:read")
        row = await self.records.store.get_release(release_id)
        if row is None or not self._visible(row, principal):
            raise NotFound(f"no release {release_id!r}")
        return await self._with_live(_release(row))

    async def page(self, limit: int, after: Cursor | None, principal: Principal) -> ReleaseListing:
        """Releases newest first, those the token may fully see."""
        principal.require("events:read")
        found = await self.records.store.list_releases(limit, after)
        releases = [_release(r) for r in found.items if self._visible(r, principal)]
        # One look-up of live deployments for the whole page.
        flat = await self.records.with_live([d for r in releases for d in r.deployments])
        items, start = [], 0
        for release in releases:
            end = start + len(release.deployments)
            items.append(release.model_copy(update={"deployments": flat[start:end]}))
            start = end
        return ReleaseListing(items=items, next_cursor=found.next_cursor)

    @staticmethod
    def _visible(row: ReleaseRow, principal: Principal) -> bool:
        return all(principal.can_access(d.component) for d in row.deployments)

    async def _with_live(self, release: Release) -> Release:
        deployments = await self.records.with_live(release.deployments)
        return release.model_copy(update={"deployments": deployments})
