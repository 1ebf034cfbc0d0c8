"""Several PostgresStores on one database, as several relay instances would have: claims
that never overlap, leases that outlive nobody, wake-ups across instances, migrations
applied once, group commit, and the errors an operator sees."""

from __future__ import annotations

import asyncio
import io
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from relay.app import bootstrap_admin_token
from relay.errors import SchemaError, StoreUnavailable, ValidationFailed
from relay.models import Status
from relay.store.base import ListQuery
from relay.store.postgres import sql as sql
from relay.store.postgres.events import insert_events
from relay.store.postgres.rows import deployment_columns
from relay.store.postgres.store import PostgresStore
from relay.timeutil import utcnow
from tests.delivery_support import eventually, free_port
from tests.lifecycle_contract import finished, started
from tests.outbox_contract import LEASE, NOW, S, completion
from tests.support import T0, make_command, make_record, make_settings


@asynccontextmanager
async def stores(url: str, count: int) -> AsyncIterator[list[PostgresStore]]:
    """`count` stores opened at the same time on one schema (closed afterwards)."""
    opened = [PostgresStore(url, pool_max=4) for _ in range(count)]
    try:
        await asyncio.gather(*(s.open() for s in opened))
        yield opened
    finally:
        await asyncio.gather(*(s.close() for s in opened))


async def _record(store: PostgresStore, n: int, forwarders: tuple[str, ...] = ("hook",)) -> None:
    for i in range(n):
        record = make_record("api", f"v{i}", created_at=T0 + i * S)
        await store.record(make_command(record, forwarders=forwarders))


async def test_instances_starting_together_apply_migrations_once(pg_url: str) -> None:
    """Stores opening at once on an empty schema all start; each migration is applied once."""
    async with stores(pg_url, 4) as opened:
        versions = await opened[0].engine.fetch("SELECT version FROM schema_migrations")
        assert len(versions) == len({r[0] for r in versions}) >= 1
        for store in opened:
            await store.ping()


async def test_concurrent_claims_never_overlap(pg_url: str) -> None:
    """Instances claiming at the same moment each get different deliveries, and together
    all of them (FOR UPDATE SKIP LOCKED)."""
    async with stores(pg_url, 4) as opened:
        await _record(opened[0], 120)

        async def drain(store: PostgresStore, owner: str) -> list[str]:
            got: list[str] = []
            while claims := await store.claim("hook", 7, NOW, LEASE, owner):
                got += [c.id for c in claims]
            return got

        results = await asyncio.gather(*(drain(s, f"i{n}") for n, s in enumerate(opened)))
        claimed = list(itertools.chain.from_iterable(results))
        assert len(claimed) == len(set(claimed)) == 120
        assert sum(1 for r in results if r) >= 2  # they really competed


async def test_opening_leaves_other_instances_leases_alone(pg_url: str) -> None:
    """A store that starts does not free the claims of another instance (only expiry does)."""
    async with stores(pg_url, 1) as (first,):
        await _record(first, 1)
        (held,) = await first.claim("hook", 1, NOW, NOW + 30 * S, "first")
        async with stores(pg_url, 1) as (second,):
            assert await second.claim("hook", 1, NOW + 1 * S, LEASE, "second") == []
            (again,) = await second.claim("hook", 1, NOW + 31 * S, LEASE, "second")
            assert again.id == held.id


async def test_a_commit_with_due_deliveries_wakes_the_other_instances(pg_url: str) -> None:
    """Recording, retrying and replaying on one instance call the others' due listeners at
    commit; the instance that committed is not called (it wakes itself)."""
    async with stores(pg_url, 2) as (a, b):
        woken = {"a": 0, "b": 0}
        a.add_due_listener(lambda: woken.__setitem__("a", woken["a"] + 1))
        b.add_due_listener(lambda: woken.__setitem__("b", woken["b"] + 1))
        await _record(a, 1)
        await eventually(lambda: woken["b"] == 1, what="b woken by a's commit")
        (claimed,) = await b.claim("hook", 1, NOW, LEASE, "b")
        await b.complete(completion(claimed, "dead", error="400"))
        await b.retry_now(claimed.id, NOW)
        await eventually(lambda: woken["a"] == 1, what="a woken by b's retry")
        await _record(a, 1, forwarders=())  # no delivery added: nobody to wake
        await asyncio.sleep(0.1)
        assert woken == {"a": 1, "b": 1}


async def test_group_commit_writes_concurrent_requests_together(pg_url: str) -> None:
    """Requests arriving together are written in a few transactions, each answered."""
    async with stores(pg_url, 1) as (store,):
        runs = 0
        real_run = store.engine.run

        async def counting(op: Callable[[Any], Any]) -> Any:
            nonlocal runs
            runs += 1
            return await real_run(op)

        store.engine.run = counting  # type: ignore[method-assign]
        commands = [
            make_command(make_record("api", f"v{i}"), forwarders=("a", "b")) for i in range(200)
        ]
        results = await asyncio.gather(*(store.record(c) for c in commands))
        assert all(not r.replayed for r in results)
        assert runs <= 5
        store.engine.run = real_run  # type: ignore[method-assign]
        page = await store.list_records(ListQuery(kind="deployment", component="api", limit=500))
        assert len(page.items) == 200
        assert len(await store.claim("a", 500, NOW, LEASE, "me")) == 200


async def test_one_bad_request_fails_alone_in_its_batch(pg_url: str) -> None:
    """Text PostgreSQL cannot store (a NUL character) fails that request with 422; the
    requests committed in the same batch are recorded."""
    async with stores(pg_url, 1) as (store,):
        good = [make_command(make_record("api", f"v{i}")) for i in range(5)]
        bad = make_command(make_record("api", "v\x00bad"))
        outcomes = await asyncio.gather(
            *(store.record(c) for c in [*good[:2], bad, *good[2:]]), return_exceptions=True
        )
        assert isinstance(outcomes[2], ValidationFailed)
        assert outcomes[2].status == 422
        page = await store.list_records(ListQuery(kind="deployment", component="api"))
        assert {d.id for d in page.items} == {c.record.id for c in good}


async def test_the_same_idempotency_key_on_two_instances_records_once(pg_url: str) -> None:
    """Two instances receiving the same key at the same moment record one deployment."""
    async with stores(pg_url, 2) as (a, b):
        first = make_command(make_record("api", "v1"), idempotency=("k", "fp"))
        second = make_command(make_record("api", "v1"), idempotency=("k", "fp"))
        results = await asyncio.gather(a.record(first), b.record(second))
        assert sorted(r.replayed for r in results) == [False, True]
        assert results[0].answer == results[1].answer
        page = await a.list_records(ListQuery(kind="deployment", component="api"))
        assert len(page.items) == 1


async def test_an_unreachable_database_is_reported_without_the_password(pg_url: str) -> None:
    """Opening a store whose server does not answer raises StoreUnavailable naming the host
    and port, never the password; the store is not ready and refuses work."""
    url = f"postgresql://relay:hunter2-secret@127.0.0.1:{free_port()}/relay"
    store = PostgresStore(url)
    with pytest.raises(StoreUnavailable) as caught:
        await store.open()
    assert "127.0.0.1" in caught.value.message
    assert "hunter2" not in caught.value.message
    with pytest.raises(StoreUnavailable):
        await store.ping()
    with pytest.raises(StoreUnavailable):
        await store.record(make_command(make_record()))
    await store.close()


async def test_a_schema_newer_than_this_relay_is_refused(pg_url: str) -> None:
    """A database migrated by a newer relay is not touched: SchemaError on open."""
    async with stores(pg_url, 1) as (store,):
        await store.engine.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (9999, 'x')"
        )
    with pytest.raises(SchemaError):
        async with stores(pg_url, 1):
            pass


async def test_lost_listen_connection_is_restored(pg_url: str) -> None:
    """When the LISTEN connection is killed, it comes back and wake-ups flow again."""
    async with stores(pg_url, 2) as (a, b):
        woken = asyncio.Event()
        b.add_due_listener(woken.set)
        await a.engine.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()"
        )
        # Restoring wakes the listener once (a commit may have been missed meanwhile).
        await asyncio.wait_for(woken.wait(), timeout=10)
        woken.clear()
        await _record(a, 1)
        await asyncio.wait_for(woken.wait(), timeout=5)


async def test_renewed_lease_and_expired_lease_across_instances(pg_url: str) -> None:
    """A renewed lease keeps another instance away; once renewals stop, the lease expires
    and the other instance claims the delivery, its attempt count intact."""
    async with stores(pg_url, 2) as (a, b):
        await _record(a, 1)
        now = utcnow()
        (held,) = await a.claim("hook", 1, now, now + timedelta(seconds=1), "a")
        assert await a.renew("a", [held.id], now + timedelta(seconds=60)) == 1
        assert await b.claim("hook", 1, now + timedelta(seconds=2), LEASE, "b") == []
        later = now + timedelta(seconds=61)
        (taken,) = await b.claim("hook", 1, later, later + timedelta(seconds=60), "b")
        assert taken.id == held.id and taken.attempts == 0
        assert await a.renew("a", [held.id], later + timedelta(seconds=90)) == 0
        await b.complete(replace(completion(taken, "delivered"), finished_at=later))
        found = await a.get_delivery(held.id)
        assert found is not None and found.status == "delivered"


async def test_rollback_decided_inside_one_group_commit(pg_url: str) -> None:
    """v1, v2, v1 committed in the same batch still make the third a rollback."""
    async with stores(pg_url, 1) as (store,):
        records = [
            make_record("api", v, stage="production", finished_at=T0 + i * S)
            for i, v in enumerate(["v1", "v2", "v1"])
        ]
        commands = [make_command(r) for r in records]
        await asyncio.gather(*(store.record(c) for c in commands))
        assert [c.event.data["is_rollback"] for c in commands] == [False, False, True]
        v2 = await store.get_record("deployment", "api", records[1].id)
        assert v2 is not None and v2.reverted is True


async def test_concurrent_transitions_on_two_instances_one_wins(pg_url: str) -> None:
    """Two instances moving the same deployment from the same status: exactly one applies."""
    async with stores(pg_url, 2) as (a, b):
        record = await started(a, "v1", T0)
        results = await asyncio.gather(
            a.transition(finished(record, Status.SUCCESS, T0 + 60 * S)),
            b.transition(finished(record, Status.ABORTED, T0 + 60 * S)),
        )
        assert sorted(r is not None for r in results) == [False, True]
        winner = next(r for r in results if r is not None)
        found = await b.get_record("deployment", "api", record.id)
        assert found is not None and found.status == winner.status


async def test_feed_numbers_are_handed_out_in_commit_order(pg_url: str) -> None:
    """While one instance's transaction holds an event number, another instance's event
    waits to commit, so a feed reader never skips the first one."""
    async with stores(pg_url, 2) as (a, b):
        cursor = await b.feed_position()
        first = make_command(make_record("api", "v1"), forwarders=("hook",))
        second = make_command(make_record("web", "v2"), forwarders=("hook",))
        item = (first.event, first.record.id, "api", first.deliveries)
        conn = await asyncpg.connect(pg_url)
        try:
            async with conn.transaction():
                await conn.execute(
                    sql.INSERT_RECORDS, ["api"], [T0], *deployment_columns([first.record])
                )
                await insert_events(conn, a.engine, [item])  # type: ignore[arg-type]
                late = asyncio.create_task(b.record(second))
                await asyncio.sleep(0.3)
                assert not late.done()
                assert (await b.feed_after(cursor, 10)).events == []
        finally:
            await conn.close()
        await late
        page = await b.feed_after(cursor, 10)
        assert [e.id for e in page.events] == [first.event.id, second.event.id]


async def test_instances_starting_together_create_one_admin_token(pg_url: str) -> None:
    """With no token anywhere, instances starting at once on one database make one admin
    token between them (printed by the one that made it) and all start."""
    async with stores(pg_url, 3) as opened:
        settings = make_settings(None, tokens=[])
        outs = [io.StringIO() for _ in opened]
        made = await asyncio.gather(
            *(bootstrap_admin_token(s, settings, out) for s, out in zip(opened, outs, strict=True))
        )
        assert sum(t is not None for t in made) == 1
        assert [t.name for t in await opened[0].list_tokens()] == ["admin"]
        assert sum(bool(out.getvalue()) for out in outs) == 1
