"""Use cases: record a deployment or build, read them back."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from forwarders.base import ForwarderConfig
from relay.auth import Principal
from relay.errors import NotFound, ValidationFailed
from relay.ids import new_id
from relay.models import (
    SLUG_RE,
    BuildIn,
    Deployment,
    DeploymentIn,
    Kind,
    event_payload,
    initial_status,
    trusted_deployment,
)
from relay.store.base import (
    ComponentRow,
    IdempotencyRequest,
    ListQuery,
    NewDelivery,
    NewEvent,
    Page,
    RecordCommand,
    RecordResult,
    Store,
    StoredAnswer,
)
from relay.store.dialect_base import NumberedPage
from relay.timeutil import utcnow

M = TypeVar("M", bound=BaseModel)
Planner = Callable[[NewEvent, Deployment], list[NewDelivery]]

_INPUT_MODELS: dict[Kind, type[BuildIn]] = {"deployment": DeploymentIn, "build": BuildIn}
_COLLECTION: dict[Kind, str] = {"deployment": "deployments", "build": "builds"}
_COMMIT = re.compile(r"^[0-9a-fA-F]{7,64}\Z")


def no_deliveries(event: NewEvent, record: Deployment) -> list[NewDelivery]:
    """The planner of a relay with no forwarders configured."""
    return []


def planner_for(forwarders: Sequence[ForwarderConfig]) -> Planner:
    """One delivery per enabled forwarder whose `match` accepts the event, due at once."""
    enabled = [f for f in forwarders if f.enabled]
    # Every event reaches a forwarder with the default rule: no matching per event.
    always = [f.name for f in enabled if f.match.accepts_all]
    selective = [f for f in enabled if not f.match.accepts_all]

    def plan(event: NewEvent, record: Deployment) -> list[NewDelivery]:
        names = always + [f.name for f in selective if f.match.accepts(event.type, event.data)]
        due = event.created_at
        return [NewDelivery(new_id(), name, due) for name in names]

    return plan


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic errors as the API's `details` items (`field`, `message`)."""
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def parse_query(model: type[M], query: Mapping[str, str]) -> M:
    """A query string read into `model`; a 422 naming each bad parameter otherwise."""
    try:
        return model.model_validate(dict(query))
    except ValidationError as exc:
        raise ValidationFailed(
            "invalid query parameters", details=validation_details(exc)
        ) from None


def parse_body(model: type[M], fields: dict[str, Any]) -> tuple[M, list[str]]:
    """Validate `fields` against `model`; unknown keys are ignored and reported as warnings."""
    try:
        parsed = model.model_validate(fields)
    except ValidationError as exc:
        raise ValidationFailed(
            "the request body is not valid", details=validation_details(exc)
        ) from None
    unknown = sorted(set(fields) - set(model.model_fields))
    return parsed, [f"unknown field {name!r} was ignored" for name in unknown]


def check_slug(component: str) -> None:
    """ValidationFailed unless `component` is a valid slug."""
    if not SLUG_RE.match(component):
        raise ValidationFailed(
            "invalid component slug",
            details=[
                {
                    "field": "component",
                    "message": "use 1-100 characters: lowercase letters, digits, '.', '_' "
                    "or '-', starting with a letter or digit",
                }
            ],
        )


def commit_of(ref: str | None) -> str | None:
    """`ref` when it looks like a commit hash (7 to 64 hex digits), else None: the commit
    a dialect's git reference names, if any."""
    return ref if ref and _COMMIT.match(ref) else None


def fingerprint(*parts: Any) -> str:
    """A stable hash of a request's meaning, to recognise an idempotent repeat."""
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class RecordService:
    """Records deployments and builds and answers queries about them."""

    store: Store
    planner: Planner = no_deliveries
    strict_components: bool = False
    on_recorded: Callable[[NewEvent], None] | None = None

    async def record(
        self,
        kind: Kind,
        component: str,
        fields: dict[str, Any],
        principal: Principal,
        idempotency_key: str | None = None,
    ) -> RecordResult:
        """Validate and durably record one deployment or build with its event and deliveries."""
        check_slug(component)
        principal.require("events:write", component)
        if self.strict_components and not await self.store.component_exists(component):
            raise NotFound(f"component {component!r} does not exist (strict_components is on)")
        body, warnings = parse_body(_INPUT_MODELS[kind], fields)
        record = self._new_record(kind, component, body, principal)
        event = NewEvent(
            id=new_id(),
            type=f"{kind}.created" if record.status.terminal else f"{kind}.started",
            created_at=record.created_at,
            data=event_payload(record),
        )
        answer: dict[str, Any] = {"id": record.id}
        if warnings:
            answer["warnings"] = warnings
        idem = None
        if idempotency_key is not None:
            idem = IdempotencyRequest(
                scope=principal.name,
                key=idempotency_key,
                fingerprint=fingerprint(kind, component, fields),
            )
        command = RecordCommand(
            record=record,
            event=event,
            answer=StoredAnswer(
                201, answer, f"/components/{component}/{_COLLECTION[kind]}/{record.id}"
            ),
            deliveries=self.planner(event, record),
            idempotency=idem,
        )
        result = await self.store.record(command)
        if not result.replayed:
            self.notify(event)
        return result

    def notify(self, event: NewEvent) -> None:
        """Tell the app about a durably recorded event (dispatcher wake-up, metrics, feed).
        Every use case that records an event calls it: records, transitions, releases."""
        if self.on_recorded is not None:
            self.on_recorded(event)

    async def with_live(self, records: list[Deployment]) -> list[Deployment]:
        """`records` with `is_live` set: each is the latest successful deployment of its
        component and stage (read now, since every later deployment changes it)."""
        keys = [(r.component, r.stage) for r in records if r.kind == "deployment"]
        if not keys:
            return records
        live = set((await self.store.live_ids(keys)).values())
        return [r.model_copy(update={"is_live": r.id in live}) for r in records]

    @staticmethod
    def _new_record(kind: Kind, component: str, body: BuildIn, principal: Principal) -> Deployment:
        now = utcnow()
        status = initial_status(body.result, body.status)
        data = {k: v for k, v in body.__dict__.items() if v is not None}
        data.pop("status", None)
        if status.terminal and body.finished_at is None:
            data["finished_at"] = now
        if not status.terminal and body.started_at is None:
            data["started_at"] = now  # a lifecycle deployment starts when it is announced
        return trusted_deployment(
            **data,
            id=new_id(),
            kind=kind,
            component=component,
            status=status,
            triggered_by=principal.name,
            created_at=now,
            updated_at=now,
        )

    async def get(
        self, kind: Kind, component: str, record_id: str, principal: Principal
    ) -> Deployment:
        """One record, or NotFound."""
        check_slug(component)
        principal.require("events:read", component)
        found = await self.store.get_record(kind, component, record_id)
        if found is None:
            raise NotFound(f"no {kind} {record_id!r} in component {component!r}")
        return (await self.with_live([found]))[0]

    async def page(self, query: ListQuery, principal: Principal) -> Page:
        """A page of records, newest first."""
        check_slug(query.component)
        principal.require("events:read", query.component)
        page = await self.store.list_records(query)
        return replace(page, items=await self.with_live(page.items))

    async def numbered_page(
        self, component: str, page: int, per_page: int, principal: Principal
    ) -> NumberedPage:
        """Page `page` (from 1) of the component's deployments, `per_page` to a page,
        newest first, with their total (the dialects' numbered listings)."""
        check_slug(component)
        principal.require("events:read", component)
        return await self.store.numbered_page(component, (page - 1) * per_page, per_page)

    async def register_component(self, component: str, principal: Principal) -> bool:
        """Create a component ahead of its first event (needed with strict_components);
        True when it is new."""
        check_slug(component)
        principal.require("admin", component)
        return await self.store.add_component(component, utcnow())

    async def components(self, principal: Principal) -> list[ComponentRow]:
        """Components the token may see, each with its latest deployment per stage."""
        principal.require("events:read")
        rows = [row for row in await self.store.list_components() if principal.can_access(row.slug)]
        latest = await self.with_live([d for row in rows for d in row.latest])
        by_id = {d.id: d for d in latest}
        return [replace(row, latest=[by_id[d.id] for d in row.latest]) for row in rows]
