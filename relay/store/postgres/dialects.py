"""The seed dialects' side of the PostgreSQL Store: kept names, numbers, numbered pages."""

from __future__ import annotations

from datetime import datetime

from relay.models import Deployment
from relay.store.dialect_base import NameRow, NumberedPage
from relay.store.postgres import sql as sql
from relay.store.postgres.engine import PgEngine
from relay.store.postgres.rows import deployment

# ON CONFLICT DO NOTHING covers both keys: the name's and the slug's.
INSERT_NAME = """
INSERT INTO dialect_names (scope, folded, name, slug, created_at)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING
"""
KEPT_NAME = """
SELECT scope, folded, name, slug FROM dialect_names
WHERE scope = $1 AND (folded = $2 OR slug = $3) ORDER BY folded = $2 DESC LIMIT 1
"""
BY_NUMBER = (
    f"SELECT {sql.READ_COLUMNS} FROM deployments "
    "WHERE seq = $1 AND component = $2 AND kind = 'deployment'"
)
NUMBERED = f"""
SELECT {sql.READ_COLUMNS}, COUNT(*) OVER () AS total FROM deployments
WHERE component = $1 AND kind = 'deployment'
ORDER BY occurred_at DESC, seq DESC LIMIT $2 OFFSET $3
"""
COUNT = "SELECT COUNT(*) FROM deployments WHERE component = $1 AND kind = 'deployment'"


class PostgresDialects:
    """Mixed into PostgresStore, which owns `engine`."""

    engine: PgEngine

    async def claim_name(self, row: NameRow, at: datetime) -> NameRow:
        """Keep the name unless its key or slug is kept; the row that is kept."""
        await self.engine.execute(INSERT_NAME, row.scope, row.folded, row.name, row.slug, at)
        found = await self.engine.fetchrow(KEPT_NAME, row.scope, row.folded, row.slug)
        assert found is not None  # inserted now, or kept before: rows are never deleted
        return NameRow(found[0], found[1], found[2], found[3])

    async def deployment_by_number(self, component: str, number: int) -> Deployment | None:
        """The deployment of `component` whose seq is `number`."""
        found = await self.engine.fetchrow(BY_NUMBER, number, component)
        return deployment(found) if found else None

    async def numbered_page(self, component: str, offset: int, limit: int) -> NumberedPage:
        """One page with the total counted by the same statement (a page past the end
        counts apart)."""
        found = await self.engine.fetch(NUMBERED, component, limit, offset)
        if found:
            total = int(found[0]["total"])
        else:
            total = int((await self.engine.fetchrow(COUNT, component) or [0])[0])
        items = [deployment({k: v for k, v in r.items() if k != "total"}) for r in found]
        return NumberedPage(items, total)
