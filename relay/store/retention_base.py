"""What retention asks of the store: delete old rows in small batches, never what is still needed.

A policy gives one age limit per kind of row (None keeps that kind forever). One call of
`prune` applies every rule once, each to at most `batch_size` rows of its own table, in
this order, so that later rules find less left to do:

- **attempts**: attempts older than the limit (by start time) of deliveries that are
  finished (delivered, skipped or dead); the delivery keeps its attempt count.
- **deliveries**: finished deliveries whose last change is older than the limit, with
  their attempts.
- **events**: events older than the limit none of whose deliveries is pending, with their
  (finished) deliveries and attempts.
- **deployments**: deployments and builds whose last change is older than the limit and
  none of whose deliveries is pending, with everything about them (events, deliveries,
  attempts, output log, links from releases, forwarders' shared state). The latest record
  of each component, kind and stage, and the live deployment of each component and stage,
  are always kept: `GET /components` and rollback decisions rely on them.
- **idempotency_keys**: stored answers of `Idempotency-Key` requests older than the limit
  (a repeat after that is recorded anew).

A pending delivery is never touched, nor anything it needs (its event, its deployment,
the forwarder's shared state). Sequence numbers are never reused: a row that is gone
leaves a gap that the live feed simply steps over.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Protocol


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each kind of row is kept; None keeps it forever."""

    attempts: timedelta | None = None
    deliveries: timedelta | None = None
    events: timedelta | None = None
    deployments: timedelta | None = None
    idempotency_keys: timedelta | None = None

    @property
    def enabled(self) -> bool:
        """True when at least one kind of row has an age limit."""
        return any(getattr(self, f.name) is not None for f in fields(self))

    def cutoff(self, kind: str, now: datetime) -> datetime | None:
        """Rows of `kind` older than this are due for deletion (None: keep them all)."""
        limit: timedelta | None = getattr(self, kind)
        return None if limit is None else now - limit


@dataclass(frozen=True)
class PruneResult:
    """Rows deleted from each table (rules' own rows and those that went with them)."""

    attempts: int = 0
    deliveries: int = 0
    events: int = 0
    deployments: int = 0
    outputs: int = 0
    idempotency_keys: int = 0

    @property
    def total(self) -> int:
        """Rows deleted in all."""
        return sum(getattr(self, f.name) for f in fields(self))

    def __add__(self, other: PruneResult) -> PruneResult:
        return PruneResult(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def counts(self) -> dict[str, int]:
        """The counts by table (for logs)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


class RetentionStore(Protocol):
    """The retention side of the Store."""

    async def prune(self, policy: RetentionPolicy, now: datetime, batch_size: int) -> PruneResult:
        """Apply each rule of `policy` once (see the module docstring) to at most
        `batch_size` rows of its table, each rule in its own short transaction; what was
        deleted. Nothing deleted means nothing is left to prune as of `now`."""
