"""The seed dialects' side of the memory Store: kept names, numbers, numbered pages."""

from __future__ import annotations

from datetime import datetime

from relay.models import Deployment
from relay.store.dialect_base import NameRow, NumberedPage


class MemoryDialects:
    """Mixed into MemoryStore, which owns `records`."""

    records: dict[str, tuple[int, Deployment]]

    def __init__(self) -> None:
        super().__init__()
        self.names: dict[tuple[str, str], NameRow] = {}

    async def claim_name(self, row: NameRow, at: datetime) -> NameRow:
        """Keep the name unless its key or slug is kept; the row that is kept."""
        if (kept := self.names.get((row.scope, row.folded))) is not None:
            return kept
        for other in self.names.values():
            if other.scope == row.scope and other.slug == row.slug:
                return other
        self.names[(row.scope, row.folded)] = row
        return row

    async def deployment_by_number(self, component: str, number: int) -> Deployment | None:
        """The deployment of `component` numbered `number`."""
        for seq, d in self.records.values():
            if seq == number and d.component == component and d.kind == "deployment":
                return d
        return None

    async def numbered_page(self, component: str, offset: int, limit: int) -> NumberedPage:
        """Sorted in Python, newest first."""
        rows = [
            (d.occurred_at, seq, d)
            for seq, d in self.records.values()
            if d.component == component and d.kind == "deployment"
        ]
        rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
        return NumberedPage([d for _, _, d in rows[offset : offset + limit]], len(rows))
