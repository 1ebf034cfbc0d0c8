"""The lifecycle side of the PostgreSQL Store: status changes, live deployments, output logs
and releases (same answers as sqlite/lifecycle.py and sqlite/releases.py)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from relay.models import Deployment
from relay.store.base import Cursor
from relay.store.lifecycle_base import (
    OutputTotals,
    ReleaseCommand,
    ReleasePage,
    ReleaseRow,
    TransitionCommand,
    output_bytes,
)
from relay.store.postgres import sql as sql
from relay.store.postgres.engine import Conn, PgEngine
from relay.store.postgres.events import insert_events
from relay.store.postgres.rows import Row, deployment


async def _transition(
    conn: Conn, engine: PgEngine, command: TransitionCommand
) -> Deployment | None:
    r = command.record
    async with conn.transaction():
        tag = await conn.execute(
            sql.UPDATE_TRANSITION,
            r.result,
            r.status.value,
            r.host,
            r.code_name,
            r.started_at,
            r.finished_at,
            r.commit_sha,
            r.branch,
            r.tag,
            json.dumps(r.meta_data, ensure_ascii=False),
            r.updated_at,
            r.occurred_at,
            r.committed_at,
            r.id,
            command.expected.value,
        )
        if tag == "UPDATE 0":
            return None  # the status changed meanwhile (maybe on another instance)
        rollbacks = await conn.fetch(sql.MARK_ROLLBACKS, [r.id])
        command.event.data["is_rollback"] = bool(rollbacks)
        await insert_events(conn, engine, [(command.event, r.id, r.component, command.deliveries)])
        row = await conn.fetchrow(sql.SELECT_DEPLOYMENT_BY_ID, r.id)
    assert row is not None
    return deployment(row)


async def _append(
    conn: Conn, deployment_id: str, lines: list[str], at: datetime, limit: int
) -> OutputTotals | None:
    async with conn.transaction():
        await conn.execute(sql.ENSURE_OUTPUT_TOTALS, deployment_id)
        row = await conn.fetchrow(sql.LOCK_OUTPUT_TOTALS, deployment_id)
        assert row is not None
        after = OutputTotals(row["lines"] + len(lines), row["bytes"] + output_bytes(lines))
        if after.bytes > limit:
            return None
        await conn.execute(sql.APPEND_OUTPUT, deployment_id, at, lines, after.lines, after.bytes)
    return after


def _release(row: Row, deployments: list[Deployment]) -> ReleaseRow:
    return ReleaseRow(
        id=row["id"],
        seq=row["seq"],
        name=row["name"],
        code_name=row["code_name"],
        notes=row["notes"],
        triggered_by=row["triggered_by"],
        created_at=row["created_at"],
        deployments=deployments,
    )


async def _releases(conn: Conn, rows: list[Row]) -> list[ReleaseRow]:
    """Releases with their deployments (one query for all of them)."""
    linked: dict[str, list[Deployment]] = {r["id"]: [] for r in rows}
    if rows:
        for d in await conn.fetch(sql.RELEASE_DEPLOYMENTS, list(linked)):
            data = dict(d)
            linked[data.pop("release_id")].append(deployment(data))
    return [_release(r, linked[r["id"]]) for r in rows]


class PostgresLifecycle:
    """Lifecycle and release operations; mixed into PostgresStore, which owns `engine`."""

    engine: PgEngine

    async def transition(self, command: TransitionCommand) -> Deployment | None:
        """Update, event, deliveries and rollback facts in one transaction (optimistic on
        the status: None when it changed meanwhile, here or on another instance)."""
        return await self.engine.run(lambda conn: _transition(conn, self.engine, command))

    async def latest_of_version(
        self, component: str, stage: str | None, version: str
    ) -> Deployment | None:
        """The last recorded deployment of `version` to `component` and `stage`."""
        row = await self.engine.fetchrow(sql.LATEST_OF_VERSION, component, version, stage)
        return deployment(row) if row else None

    async def live_ids(
        self, keys: list[tuple[str, str | None]]
    ) -> dict[tuple[str, str | None], str]:
        """The live deployment of each (component, stage) asked for."""
        unique = list(dict.fromkeys(keys))
        if not unique:
            return {}
        components = [component for component, _ in unique]
        stages = [stage for _, stage in unique]
        rows = await self.engine.fetch(sql.LIVE_IDS, components, stages)
        return {(r[0], r[1]): r[2] for r in rows}

    async def deployments_by_ids(self, ids: list[str]) -> dict[str, Deployment]:
        """The existing deployments among `ids`."""
        rows = await self.engine.fetch(sql.SELECT_DEPLOYMENTS_BY_IDS, list(dict.fromkeys(ids)))
        return {r["id"]: deployment(r) for r in rows}

    async def append_output(
        self, deployment_id: str, lines: list[str], at: datetime, limit_bytes: int
    ) -> OutputTotals | None:
        """Append lines unless the log would pass `limit_bytes` (instances appending to one
        log at once take turns on its totals row)."""
        return await self.engine.run(
            lambda conn: _append(conn, deployment_id, lines, at, limit_bytes)
        )

    async def read_output(self, deployment_id: str) -> list[str]:
        """Every line of the log, in order."""
        return [r[0] for r in await self.engine.fetch(sql.SELECT_OUTPUT, deployment_id)]

    async def record_release(self, command: ReleaseCommand) -> None:
        """Release, links, event and deliveries in one transaction."""
        c = command

        async def op(conn: Conn) -> None:
            async with conn.transaction():
                await conn.execute(
                    sql.INSERT_RELEASE,
                    c.id,
                    c.name,
                    c.code_name,
                    c.notes,
                    c.triggered_by,
                    c.created_at,
                    c.deployment_ids,
                )
                # A release belongs to no single component: its event row says "".
                await insert_events(conn, self.engine, [(c.event, None, "", c.deliveries)])

        await self.engine.run(op)

    async def get_release(self, release_id: str) -> ReleaseRow | None:
        """One release with its deployments."""

        async def op(conn: Conn) -> ReleaseRow | None:
            row = await conn.fetchrow(sql.SELECT_RELEASE, release_id)
            return (await _releases(conn, [row]))[0] if row else None

        return await self.engine.run(op)

    async def list_releases(self, limit: int, after: Cursor | None = None) -> ReleasePage:
        """Newest first by (created_at, seq)."""
        text, params = sql.LIST_RELEASES, list[Any]()
        if after is not None:
            text += " AND (created_at, seq) < ($1, $2)"
            params += [after.occurred_at, after.seq]
        text += f" ORDER BY created_at DESC, seq DESC LIMIT ${len(params) + 1}"
        params.append(limit + 1)

        async def op(conn: Conn) -> ReleasePage:
            rows = await conn.fetch(text, *params)
            items = await _releases(conn, rows[:limit])
            more = len(rows) > limit and items
            nxt = Cursor(occurred_at=items[-1].created_at, seq=items[-1].seq) if more else None
            return ReleasePage(items=items, next_cursor=nxt)

        return await self.engine.run(op)
