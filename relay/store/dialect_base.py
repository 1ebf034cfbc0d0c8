"""What the seed dialects need of the store besides records: names as their clients send
them (Retrace), deployments by integer number (Cloud66) and numbered pages with totals
(Cloud66 and Scalingo pagination)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from relay.models import Deployment


@dataclass(frozen=True)
class NameRow:
    """A name as a client first sent it, the key it is matched by and what relay calls it."""

    scope: str
    folded: str
    name: str
    slug: str


@dataclass(frozen=True)
class NumberedPage:
    """One page of a component's deployments, newest first, with the total count."""

    items: list[Deployment]
    total: int


class DialectStore(Protocol):
    """Store operations of the dialects."""

    async def claim_name(self, row: NameRow, at: datetime) -> NameRow:
        """Keep `row` unless its (scope, folded) key or its (scope, slug) is already kept;
        the row kept for the key, else the row that holds the slug (its `folded` then
        differs from `row.folded`: two names would share one slug)."""

    async def deployment_by_number(self, component: str, number: int) -> Deployment | None:
        """The deployment (not build) of `component` with this number."""

    async def numbered_page(self, component: str, offset: int, limit: int) -> NumberedPage:
        """Deployments of `component`, newest first, `limit` of them after `offset`."""
