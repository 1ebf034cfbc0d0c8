"""What the lifecycle needs of the store: status changes, Cloud66 facts, output logs, releases.

Rollback facts (stored) are decided by the store in the transaction that makes a
deployment `success`, so that two deployments committed together see each other:

- the deployment D that became `success` *replaces* L, the deployment of the same
  component and stage that was live until then (the latest successful one by
  finished time, then arrival order), when D is now the latest itself;
- D is a *rollback* when L's version differs from D's and D's version had already
  been deployed successfully to that component and stage before L;
- then L is *reverted*: `reverted_at` = D's finished_at, `reverted_by` = D's
  `triggered_by`; and D's event payload says `is_rollback: true`.

`is_live` is not stored: it is the answer of `live_ids` at read time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from relay.models import Deployment, Status
from relay.store.values import Cursor, NewDelivery, NewEvent


@dataclass(frozen=True)
class TransitionCommand:
    """An accepted status change, written only while the deployment still has `expected`."""

    record: Deployment
    expected: Status
    event: NewEvent
    deliveries: list[NewDelivery] = field(default_factory=list)


@dataclass(frozen=True)
class OutputTotals:
    """Size of a deployment's output log after an append."""

    lines: int
    bytes: int


@dataclass(frozen=True)
class ReleaseCommand:
    """A new release, its deployments (in order) and its `release.created` event."""

    id: str
    name: str
    code_name: str | None
    notes: str | None
    triggered_by: str | None
    created_at: datetime
    deployment_ids: list[str]
    event: NewEvent
    deliveries: list[NewDelivery] = field(default_factory=list)


@dataclass(frozen=True)
class ReleaseRow:
    """A stored release with its deployments (in the order given at creation)."""

    id: str
    seq: int
    name: str
    code_name: str | None
    notes: str | None
    triggered_by: str | None
    created_at: datetime
    deployments: list[Deployment]


@dataclass(frozen=True)
class ReleasePage:
    """One page of releases, newest first, and where the next one starts."""

    items: list[ReleaseRow]
    next_cursor: Cursor | None


def output_bytes(lines: list[str]) -> int:
    """What `lines` weigh in an output log: UTF-8 bytes, one newline each."""
    return sum(len(line.encode("utf-8")) + 1 for line in lines)


class LifecycleStore(Protocol):
    """The lifecycle's side of the Store."""

    async def transition(self, command: TransitionCommand) -> Deployment | None:
        """Update the deployment, write its event and deliveries, decide rollback facts,
        all in one transaction; None (nothing written) when its status is no longer
        `command.expected` (a concurrent change won)."""

    async def latest_of_version(
        self, component: str, stage: str | None, version: str
    ) -> Deployment | None:
        """The most recently recorded deployment of `version` to `component` and `stage`."""

    async def live_ids(
        self, keys: list[tuple[str, str | None]]
    ) -> dict[tuple[str, str | None], str]:
        """(component, stage) → id of its live deployment, for each of `keys` that has one."""

    async def deployments_by_ids(self, ids: list[str]) -> dict[str, Deployment]:
        """The deployments (kind `deployment`) among `ids` that exist, by id."""

    async def append_output(
        self, deployment_id: str, lines: list[str], at: datetime, limit_bytes: int
    ) -> OutputTotals | None:
        """Append `lines` to a deployment's output log; None (nothing written) when the
        log would grow past `limit_bytes` (see `output_bytes`)."""

    async def read_output(self, deployment_id: str) -> list[str]:
        """Every line of a deployment's output log, in order."""

    async def record_release(self, command: ReleaseCommand) -> None:
        """Write a release, its deployment links, its event and deliveries in one transaction."""

    async def get_release(self, release_id: str) -> ReleaseRow | None:
        """One release with its deployments."""

    async def list_releases(self, limit: int, after: Cursor | None = None) -> ReleasePage:
        """Releases newest first (by creation time, then arrival order)."""
