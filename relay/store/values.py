"""What the use cases hand every store to write, and the cursor they page by: plain
values shared by the Store protocol and its parts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


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
class Cursor:
    """Position after the last item of a page (newest-first order)."""

    occurred_at: datetime
    seq: int
