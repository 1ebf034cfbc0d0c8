"""Pydantic models of the domain and of request bodies."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    computed_field,
)

from relay.timeutil import format_wire, to_utc

# \Z, not $: `$` also matches before a trailing newline ("api\n" is no slug).
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}\Z")

UtcDatetime = Annotated[
    datetime,
    AfterValidator(to_utc),
    PlainSerializer(format_wire, return_type=str, when_used="json"),
]

# The latest time a request may give: the stores read times to the millisecond (SQLite's
# julianday rounds to it), and one in the last half millisecond of year 9999 rounds into
# year 10000, which has no value: the write that counts the deployment would fail.
LATEST_TIME = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


def _storable(value: datetime) -> datetime:
    if value > LATEST_TIME:
        raise ValueError("the time is later than 9999-12-31T23:59:59.999Z, the latest relay keeps")
    return value


# A time of a request body that is stored (answers keep reading UtcDatetime).
InputDatetime = Annotated[UtcDatetime, AfterValidator(_storable)]


Version = Annotated[str, StringConstraints(min_length=1, max_length=200)]
ShortText = Annotated[str, StringConstraints(max_length=200)]

MAX_META_DEPTH = 32
MAX_META_KEYS = 1000


def _shallow_enough(value: dict[str, Any]) -> dict[str, Any]:
    # Deeper JSON would be accepted here and then fail to serialise (pydantic stops at
    # 255 levels), turning a bad request into a 500. The key count bounds the work every
    # forwarder and reader does with a record (the body size alone allows ~100,000 keys).
    stack: list[tuple[Any, int]] = [(value, 1)]
    keys = 0
    while stack:
        item, depth = stack.pop()
        if depth > MAX_META_DEPTH:
            raise ValueError(f"meta_data may be nested at most {MAX_META_DEPTH} levels deep")
        if isinstance(item, dict):
            keys += len(item)
            if keys > MAX_META_KEYS:
                raise ValueError(f"meta_data may hold at most {MAX_META_KEYS} keys in all")
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return value


MetaData = Annotated[dict[str, Any], AfterValidator(_shallow_enough)]


class Status(StrEnum):
    """Lifecycle states (Scalingo vocabulary)."""

    QUEUED = "queued"
    BUILDING = "building"
    PUSHING = "pushing"
    STARTING = "starting"
    SUCCESS = "success"
    BUILD_ERROR = "build-error"
    CRASHED_ERROR = "crashed-error"
    TIMEOUT_ERROR = "timeout-error"
    ABORTED = "aborted"

    @property
    def terminal(self) -> bool:
        """True when no further transition is allowed."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        Status.SUCCESS,
        Status.BUILD_ERROR,
        Status.CRASHED_ERROR,
        Status.TIMEOUT_ERROR,
        Status.ABORTED,
    }
)

Kind = Literal["deployment", "build"]
AttemptOutcome = Literal["delivered", "skipped", "retry", "dead"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class BuildIn(_Strict):
    """Body of `POST /components/{slug}/builds`."""

    version: Version
    result: ShortText | None = None
    code_name: ShortText | None = None
    started_at: InputDatetime | None = None
    finished_at: InputDatetime | None = None
    commit_sha: ShortText | None = None
    committed_at: InputDatetime | None = Field(
        default=None, description="When the deployed commit was made (DORA change lead time)."
    )
    branch: ShortText | None = None
    tag: ShortText | None = None
    meta_data: MetaData | None = None
    status: Status | None = Field(
        default=None, description="Lifecycle state; defaults to one derived from `result`."
    )


class DeploymentIn(BuildIn):
    """Body of `POST /components/{slug}/deployments` (ReleaseBits field names)."""

    stage: ShortText | None = None
    host: Annotated[str, StringConstraints(max_length=255)] | None = None


class DeliverySummary(BaseModel):
    """One forwarder's view of a deployment."""

    forwarder: str
    status: str
    attempts: int


class Deployment(BaseModel):
    """A recorded deployment or build as the API returns it."""

    id: str
    number: int | None = Field(
        default=None,
        description="A stable integer, unique across relay (builds share the sequence, so "
        "there are gaps); the id of the Cloud66 dialect.",
    )
    kind: Kind = "deployment"
    component: str
    version: str
    result: str | None = None
    status: Status
    stage: str | None = None
    host: str | None = None
    code_name: str | None = None
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
    commit_sha: str | None = None
    committed_at: UtcDatetime | None = Field(
        default=None, description="When the deployed commit was made (DORA change lead time)."
    )
    branch: str | None = None
    tag: str | None = None
    meta_data: dict[str, Any] = Field(default_factory=dict)
    triggered_by: str | None = Field(default=None, description="Name of the token that sent it.")
    created_at: UtcDatetime
    updated_at: UtcDatetime
    is_live: bool = Field(
        default=False,
        description="The latest successful deployment of its component and stage.",
    )
    is_rollback: bool = Field(
        default=False,
        description="It put back a version that had been live on this component and stage "
        "before the deployment it replaced.",
    )
    reverted_at: UtcDatetime | None = Field(
        default=None, description="When a rollback replaced this deployment."
    )
    reverted_by: str | None = Field(
        default=None, description="Token name that sent the rollback replacing this one."
    )
    deliveries: list[DeliverySummary] | None = Field(
        default=None, description="Per-forwarder delivery state (single-item answers only)."
    )

    @property
    def occurred_at(self) -> datetime:
        """The time listings sort and filter on: finished_at, else started_at, else
        created_at."""
        return self.finished_at or self.started_at or self.created_at

    @computed_field(description="A rollback replaced this deployment.")  # type: ignore[prop-decorator]
    @property
    def reverted(self) -> bool:
        """True once a rollback replaced this deployment."""
        return self.reverted_at is not None

    @computed_field(description="The deployment has not reached a terminal status yet.")  # type: ignore[prop-decorator]
    @property
    def is_deploying(self) -> bool:
        """True while the deployment is in progress."""
        return not self.status.terminal


# Every field in declaration order (which model_dump keeps) with its default, looked up
# once: model_construct would ask each field for its default on every call. Required
# fields hold None until the caller's values replace them; meta_data gets a fresh dict.
_TEMPLATE = {
    name: None if field.is_required() or field.default_factory else field.default
    for name, field in Deployment.model_fields.items()
}


def trusted_deployment(**values: Any) -> Deployment:
    """A Deployment from values already validated (a request body checked by its model,
    server-made ids and times): no validation, defaults filled in."""
    record = Deployment.__new__(Deployment)
    # What model_construct does, minus its per-field loop (the hot path of every POST).
    setattr_ = object.__setattr__
    setattr_(record, "__dict__", {**_TEMPLATE, "meta_data": {}, **values})
    setattr_(record, "__pydantic_fields_set__", set(values))
    setattr_(record, "__pydantic_extra__", None)
    setattr_(record, "__pydantic_private__", None)
    return record


def event_payload(record: Deployment) -> dict[str, Any]:
    """What an event says about a deployment: all of it but the per-answer facts
    (`deliveries`, and `is_live`, which later deployments change)."""
    return record.model_dump(mode="json", exclude={"deliveries", "is_live"})


class CreatedAnswer(BaseModel):
    """The 201 answer of a POST that records something."""

    id: str
    warnings: list[str] | None = None


class Component(BaseModel):
    """A component with its latest deployment per stage."""

    slug: str
    created_at: UtcDatetime
    latest_deployments: list[Deployment]


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] | None = None


class ErrorAnswer(BaseModel):
    """Every non-2xx answer."""

    error: ErrorBody


def initial_status(result: str | None, status: Status | None) -> Status:
    """Status of a deployment recorded in one call, derived from its `result`."""
    if status is not None:
        return status
    if result is None or result.lower() == "success":
        return Status.SUCCESS
    try:
        return Status(result.lower())
    except ValueError:
        return Status.BUILD_ERROR


DeliveryStatus = Literal["pending", "delivered", "skipped", "dead"]


class Attempt(BaseModel):
    """One try of a delivery."""

    number: int
    started_at: UtcDatetime
    duration_ms: float
    status_code: int | None = None
    outcome: AttemptOutcome
    error: str | None = None
    response_excerpt: str | None = None


class Delivery(BaseModel):
    """One event on its way to one forwarder."""

    id: str
    event_id: str
    event_type: str
    deployment_id: str | None
    component: str
    forwarder: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: UtcDatetime | None = None
    last_error: str | None = None
    last_status_code: int | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    delivered_at: UtcDatetime | None = None
    attempt_log: list[Attempt] | None = Field(
        default=None, description="Every attempt, oldest first (single-delivery answers)."
    )


class ForwarderCounts(BaseModel):
    """Deliveries of one forwarder by status, with recent attempt outcomes."""

    pending: int = 0
    delivered: int = 0
    skipped: int = 0
    dead: int = 0
    attempts_24h: int = 0
    failures_24h: int = 0
    oldest_pending_at: UtcDatetime | None = None
    last_error: str | None = None
    last_error_at: UtcDatetime | None = None


class ForwarderInfo(BaseModel):
    """A configured forwarder as `GET /forwarders` shows it (no secrets)."""

    name: str
    type: str
    state: Literal["active", "circuit-open", "disabled"]
    disabled_reason: str | None = None
    success_rate_24h: float | None = Field(
        default=None, description="Share of attempts in the last 24 h that did not fail."
    )
    counts: ForwarderCounts
