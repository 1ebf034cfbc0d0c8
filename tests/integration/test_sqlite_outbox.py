"""The delivery side of the SQLite store (relay/store/sqlite/outbox.py) on a real file, and
the transactional outbox: an event and its deliveries are written together or not at all."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from relay.errors import StoreError
from relay.models import Deployment
from relay.records.service import RecordService, planner_for
from relay.store.base import DeliveryQuery, Store
from relay.store.leases import new_owner
from relay.store.sqlite import compact
from relay.store.sqlite import sql as sql
from relay.store.sqlite.lifecycle import insert_event
from relay.store.sqlite.store import SqliteStore
from tests.delivery_support import ADMIN, engine_settings, webhook
from tests.outbox_contract import OutboxContract, later_command
from tests.support import T0, exited_pid, make_command, make_record


class TestSqliteOutbox(OutboxContract):
    """SqliteStore's outbox behaves like every other store's."""

    async def later_event(
        self, store: Store, record: Deployment, forwarders: tuple[str, ...], at: datetime
    ) -> list[str]:
        """Insert another event of the deployment with its outbox rows (as a lifecycle
        transition would)."""
        assert isinstance(store, SqliteStore)
        command = later_command(record, forwarders, at)
        event = command.event

        def op(conn: sqlite3.Connection) -> None:
            insert_event(conn, event, record.id, record.component, command.deliveries)

        await store.engine.write(op)
        return [d.id for d in command.deliveries]


def _count(db: Path, table: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


async def test_recording_writes_one_delivery_per_matching_forwarder(
    store: SqliteStore,
) -> None:
    """A recorded deployment has a pending delivery for each forwarder that wants it."""
    settings = engine_settings(
        None,
        [
            webhook("all", "http://127.0.0.1:9/all"),
            webhook("prod", "http://127.0.0.1:9/prod", match={"stages": ["production"]}),
            webhook("web", "http://127.0.0.1:9/web", match={"components": ["web-*"]}),
            webhook("off", "http://127.0.0.1:9/off", enabled=False),
        ],
    )
    service = RecordService(store, planner_for(settings.forwarders))
    body = {"version": "1.2.3", "stage": "production", "result": "success"}
    result = await service.record("deployment", "api", body, ADMIN)
    record_id = result.answer.body["id"]
    found = await store.list_deliveries(DeliveryQuery(deployment_id=record_id))
    assert sorted(d.forwarder for d in found) == ["all", "prod"]
    assert all(d.status == "pending" and d.attempts == 0 for d in found)
    record = await store.get_record("deployment", "api", record_id)
    assert record is not None
    assert sorted((s.forwarder, s.status) for s in record.deliveries) == [
        ("all", "pending"),
        ("prod", "pending"),
    ]


async def test_an_idempotent_repeat_adds_no_delivery(store: SqliteStore, db: Path) -> None:
    """Replaying a request with the same Idempotency-Key creates no event and no delivery."""
    settings = engine_settings(None, [webhook("all", "http://127.0.0.1:9/all")])
    service = RecordService(store, planner_for(settings.forwarders))
    body = {"version": "1.2.3"}
    first = await service.record("deployment", "api", body, ADMIN, idempotency_key="k-1")
    again = await service.record("deployment", "api", body, ADMIN, idempotency_key="k-1")
    assert again.replayed and again.answer == first.answer
    assert (_count(db, "events"), _count(db, "deliveries")) == (1, 1)


async def test_an_event_and_its_deliveries_commit_together(store: SqliteStore, db: Path) -> None:
    """If an outbox row cannot be written, neither are the deployment and its event —
    while another request committed in the same batch is unaffected."""
    broken = make_command(make_record("api", "v1"), forwarders=["a", "b"])
    first = broken.deliveries[0]
    broken = replace(broken, deliveries=[first, replace(broken.deliveries[1], id=first.id)])
    fine = make_command(make_record("api", "v2"), forwarders=["a"])
    results = await asyncio.gather(store.record(broken), store.record(fine), return_exceptions=True)
    assert isinstance(results[0], StoreError)
    assert not isinstance(results[1], BaseException)
    assert await store.get_record("deployment", "api", broken.record.id) is None
    assert await store.get_record("deployment", "api", fine.record.id) is not None
    assert (_count(db, "deployments"), _count(db, "events"), _count(db, "deliveries")) == (1, 1, 1)


async def test_claims_of_a_dead_process_are_freed_on_open(db: Path) -> None:
    """A process killed mid-send leaves leases behind; the next open makes them claimable."""
    first = SqliteStore(db)
    await first.open()
    await first.record(make_command(make_record(created_at=T0), forwarders=["hook"]))
    far = T0 + timedelta(days=1)
    crashed = f"{socket.gethostname()}:{exited_pid()}:crashed"
    assert len(await first.claim("hook", 1, T0, far, crashed)) == 1
    await first.close()  # the lease stays in the file, as after kill -9

    second = SqliteStore(db)
    await second.open()
    try:
        assert len(await second.claim("hook", 1, T0, far, "me")) == 1
    finally:
        await second.close()


async def test_opening_the_file_leaves_a_running_process_s_leases_alone(db: Path) -> None:
    """A second process opening the file (a CLI command, a worker) frees no live lease."""
    sender = SqliteStore(db)
    await sender.open()
    try:
        await sender.record(make_command(make_record(created_at=T0), forwarders=["hook"]))
        far = T0 + timedelta(days=1)
        assert len(await sender.claim("hook", 1, T0, far, new_owner())) == 1
        other = SqliteStore(db)
        await other.open()
        try:
            assert await other.claim("hook", 1, T0, far, new_owner()) == []
        finally:
            await other.close()
    finally:
        await sender.close()


def _plan(db: Path, statement: str, params: tuple[object, ...]) -> list[str]:
    conn = sqlite3.connect(db)
    compact.register(conn)
    try:
        return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + statement, params)]
    finally:
        conn.close()


async def test_a_claim_reads_waiting_deliveries_in_order_without_sorting(
    store: SqliteStore, db: Path
) -> None:
    """A claim walks one index of waiting deliveries in claim order: after a resume makes
    thousands due at the same instant it still reads only as many as it leases."""
    stamp = compact.micros(T0)
    plan = _plan(db, sql.CLAIM_CANDIDATES, ("hook", stamp, stamp, 100))
    assert any("USING INDEX deliveries_pending" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


async def test_the_next_due_time_is_read_from_the_waiting_index(
    store: SqliteStore, db: Path
) -> None:
    """Finding when to wake up seeks the index of waiting deliveries; it never reads the
    whole history of delivered ones."""
    for statement, params in ((sql.NEXT_DUE, ()), (sql.NEXT_DUE_AFTER, (compact.micros(T0),))):
        plan = _plan(db, statement, params)
        reads = [step for step in plan if " deliveries" in step]
        assert reads, plan
        assert all("USING INDEX deliveries_pending" in step for step in reads), plan
