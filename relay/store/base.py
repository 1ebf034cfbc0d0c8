"""The Store protocol: every storage operation relay needs, backend-neutral."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from relay.models import Deployment, Kind


@dataclass(frozen=True)
class NewEvent:
    """A state change to record and fan out."""

    id: str
    type: str
    created_at: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class NewDelivery:
    """One outbox row: `event` must reach `forwarder`, first try at `next_attempt_at`."""

    id: str
    forwarder: str
    next_attempt_at: datetime


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
    """Everything one accepted POST writes, in one transaction."""

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
class Cursor:
    """Position after the last item of a page (newest-first order)."""

    occurred_at: datetime
    seq: int


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


class Store(Protocol):
    """Domain operations on durable storage; implemented per backend."""

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

    async def add_token(self, token: TokenRecord) -> None:
        """Store a new token; Conflict if an active token has the same name."""

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        """The active token with this hash, if any."""

    async def list_tokens(self) -> list[TokenRecord]:
        """Every token, revoked ones included."""

    async def revoke_token(self, name: str) -> bool:
        """Revoke the active token of this name; False if there is none."""
