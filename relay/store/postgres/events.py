"""Writing events with their outbox rows on PostgreSQL (records, transitions, releases)."""

from __future__ import annotations

import json
from typing import Any

from relay.store.base import NewDelivery, NewEvent
from relay.store.postgres import sql as sql
from relay.store.postgres.engine import Conn, PgEngine

# An event to insert: the event, its deployment id and component, its outbox rows.
EventInsert = tuple[NewEvent, str | None, str, list[NewDelivery]]


async def insert_events(conn: Conn, engine: PgEngine, events: list[EventInsert]) -> None:
    """Events with their outbox rows, in this order, in one statement; the other instances
    are notified at commit when deliveries were added."""
    ev: list[list[Any]] = [[], [], [], [], [], []]
    dl: list[list[Any]] = [[], [], [], [], [], []]
    for event, deployment_id, component, deliveries in events:
        values = (
            event.id,
            event.type,
            deployment_id,
            component,
            event.created_at,
            json.dumps(event.data, ensure_ascii=False),
        )
        for column, value in zip(ev, values, strict=True):
            column.append(value)
        for d in deliveries:
            row = (d.id, event.id, deployment_id, d.forwarder, d.next_attempt_at, event.created_at)
            for column, value in zip(dl, row, strict=True):
                column.append(value)
    await conn.execute(sql.INSERT_EVENTS, *ev, *dl, engine.channel, engine.instance)
