"""The Store protocol: every storage operation relay needs, backend-neutral."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from relay.models import Attempt, Delivery, DeliveryStatus, Deployment, ForwarderCounts, Kind
from relay.store.cluster_base import ClusterStore
from relay.store.dashboard_base import DashboardStore
from relay.store.dialect_base import DialectStore
from relay.store.feed_base import FeedStore
from relay.store.insights_base import InsightsStore
from relay.store.lifecycle_base import LifecycleStore
from relay.store.retention_base import RetentionStore

# Re-exported: the use cases and backends import them from here with the protocol.
from relay.store.values import Cursor as Cursor
from relay.store.values import NewDelivery as NewDelivery
from relay.store.values import NewEvent as NewEvent


@dataclass(frozen=True)
class IdempotencyRequest:
    """An `Idempotency-Key` with the fingerprint of the request that carried it."""

    scope: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class StoredAnswer:
    """An HTTP answer kept so that a repeated request gets it again."""

    status: int
    body: dict[str, Any]
    location: str | None = None


@dataclass(frozen=True)
class RecordCommand:
    """Everything one accepted POST writes, in one transaction.

    The store sets `event.data["is_rollback"]` and `event.data["number"]`: only it can
    decide them, inside the transaction (see lifecycle_base.py), so that the event says
    what the row says."""

    record: Deployment
    event: NewEvent
    answer: StoredAnswer
    deliveries: list[NewDelivery] = field(default_factory=list)
    idempotency: IdempotencyRequest | None = None


@dataclass(frozen=True)
class RecordResult:
    """What `Store.record` did: `replayed` when an idempotent repeat was answered."""

    answer: StoredAnswer
    replayed: bool


@dataclass(frozen=True)
class ListQuery:
    """Filters and paging of a deployments or builds listing."""

    kind: Kind
    component: str
    stage: str | None = None
    result: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    after: Cursor | None = None


@dataclass(frozen=True)
class Page:
    """One page of a listing and where the next one starts (None at the end)."""

    items: list[Deployment]
    next_cursor: Cursor | None


@dataclass(frozen=True)
class ComponentRow:
    """A component and its latest deployment per stage."""

    slug: str
    created_at: datetime
    latest: list[Deployment]


@dataclass(frozen=True)
class TokenRecord:
    """An API token as stored: never the token itself, only its hash."""

    id: str
    name: str
    token_hash: str
    scopes: tuple[str, ...]
    components: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None = None


class RecordStore(Protocol):
    """The recording side of the Store."""

    async def open(self) -> None:
        """Connect, apply migrations, start background writers."""

    async def close(self) -> None:
        """Finish pending writes and release connections."""

    async def ping(self) -> None:
        """Raise StoreError unless the store answers and its schema is current."""

    async def record(self, command: RecordCommand) -> RecordResult:
        """Write a record, its event and its deliveries durably, honouring idempotency."""

    async def get_record(self, kind: Kind, component: str, record_id: str) -> Deployment | None:
        """One deployment or build with its deliveries summary."""

    async def list_records(self, query: ListQuery) -> Page:
        """A page of deployments or builds, newest first."""

    async def list_components(self) -> list[ComponentRow]:
        """Every component with its latest deployment per stage."""

    async def component_exists(self, slug: str) -> bool:
        """True when the component has been recorded before."""

    async def add_component(self, slug: str, created_at: datetime) -> bool:
        """Register a component; False when it already existed."""

    async def add_token(self, token: TokenRecord) -> None:
        """Store a new token; Conflict if an active token has the same name."""

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        """The active token with this hash, if any."""

    async def list_tokens(self) -> list[TokenRecord]:
        """Every token, revoked ones included."""

    async def revoke_token(self, name: str) -> bool:
        """Revoke the active token of this name; False if there is none."""


@dataclass(frozen=True)
class Claimed:
    """A due delivery leased to this process, with everything the send needs."""

    id: str
    forwarder: str
    attempts: int
    deployment_id: str | None
    event_id: str
    event_type: str
    event_created_at: datetime
    payload: dict[str, Any]
    state: dict[str, Any]
    shared: dict[str, Any]


@dataclass(frozen=True)
class Completion:
    """The outcome of one attempt, written in one transaction."""

    delivery_id: str
    forwarder: str
    deployment_id: str | None
    attempt: Attempt
    status: DeliveryStatus
    next_attempt_at: datetime | None
    state: dict[str, Any]
    shared: dict[str, Any]
    error: str | None
    status_code: int | None
    finished_at: datetime


@dataclass(frozen=True)
class DeliveryQuery:
    """Filters of a deliveries search."""

    status: str | None = None
    forwarder: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    deployment_id: str | None = None
    limit: int = 100


@dataclass(frozen=True)
class EventRow:
    """A recorded event (for replays)."""

    id: str
    seq: int
    type: str
    deployment_id: str | None
    created_at: datetime
    payload: dict[str, Any]


class OutboxStore(Protocol):
    """The delivery side of the Store."""

    async def claim(
        self, forwarder: str, limit: int, now: datetime, lease_until: datetime, owner: str
    ) -> list[Claimed]:
        """Lease up to `limit` due deliveries of `forwarder`, oldest first, one per
        (deployment, forwarder) at a time so that events arrive in order."""

    async def complete(self, completion: Completion) -> None:
        """Record an attempt and the delivery's new status, state and lease release."""

    async def complete_many(self, completions: Sequence[Completion]) -> None:
        """`complete` for several deliveries in one transaction: all are recorded, or
        none (and it raises)."""

    async def release_claims(self, owner: str) -> int:
        """Drop the leases of `owner` (a dispatcher that stops) so that its deliveries are
        claimable now; how many."""

    async def next_due(self, after: datetime | None = None) -> datetime | None:
        """The earliest `next_attempt_at` among pending deliveries (later than `after`)."""

    async def list_deliveries(self, query: DeliveryQuery) -> list[Delivery]:
        """Deliveries matching `query`, newest first; with attempts for one deployment."""

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        """One delivery with its attempts."""

    async def retry_now(self, delivery_id: str, now: datetime) -> Delivery | None:
        """Make a delivery (dead ones too) pending and due now."""

    async def resume_due(self, forwarder: str, now: datetime) -> int:
        """Make every pending delivery of `forwarder` that waits for a later retry due at
        `now` (no new delivery, leases in force stay); how many were moved."""

    async def events_between(self, since: datetime, until: datetime) -> list[EventRow]:
        """Recorded events in [since, until), oldest first."""

    async def add_deliveries(self, rows: list[tuple[EventRow, NewDelivery]]) -> int:
        """Add outbox rows for already recorded events (replays)."""

    async def forwarder_counts(self, since: datetime) -> dict[str, ForwarderCounts]:
        """Per-forwarder delivery counts and attempt outcomes since `since`."""

    async def set_disabled(self, forwarder: str, reason: str | None) -> None:
        """Disable (reason given) or re-enable (None) a forwarder, durably."""

    async def disabled_forwarders(self) -> dict[str, str]:
        """Disabled forwarders and why."""


class Store(
    RecordStore,
    OutboxStore,
    FeedStore,
    LifecycleStore,
    ClusterStore,
    RetentionStore,
    DialectStore,
    DashboardStore,
    InsightsStore,
    Protocol,
):
    """Domain operations on durable storage; implemented per backend."""
