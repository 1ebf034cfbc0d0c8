"""Retention every Store backend shares: subclass `RetentionContract` and give it a `store`.

tests/unit/test_memory_retention.py runs it on the in-memory store,
tests/integration/test_sqlite_retention.py on a real SQLite file and
tests/integration/test_postgres.py on PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from relay.errors import IdempotencyConflict
from relay.models import DeliveryStatus, Deployment, Kind, Status
from relay.store.base import DeliveryQuery, NewEvent, Store
from relay.store.feed_base import FeedCursor
from relay.store.lifecycle_base import ReleaseCommand
from relay.store.retention_base import PruneResult, RetentionPolicy
from tests.outbox_contract import completion
from tests.support import T0, make_command, make_record

S = timedelta(seconds=1)
M = timedelta(minutes=1)
WEEK = timedelta(days=7)
PRUNE_AT = T0 + timedelta(days=30)
RECENT = PRUNE_AT - timedelta(days=1)  # younger than every limit of these tests
FAR = PRUNE_AT + timedelta(days=365)  # a retry time that is never reached


async def deploy(
    store: Store,
    version: str,
    *,
    at: datetime = T0,
    forwarders: tuple[str, ...] = (),
    component: str = "api",
    stage: str | None = None,
    kind: Kind = "deployment",
    status: Status = Status.SUCCESS,
    finished_at: datetime | None = None,
) -> tuple[Deployment, list[str]]:
    """Record a deployment (its deliveries due at `at`); it and its delivery ids."""
    record = make_record(
        component,
        version,
        kind=kind,
        stage=stage,
        status=status,
        result="success" if status == Status.SUCCESS else "failure",
        created_at=at,
        finished_at=finished_at,
    )
    command = make_command(record, forwarders=forwarders)
    await store.record(command)
    return record, [d.id for d in command.deliveries]


async def settle(
    store: Store,
    forwarder: str,
    status: DeliveryStatus,
    at: datetime,
    next_at: datetime | None = None,
) -> int:
    """Try every due delivery of `forwarder` once at `at`, ending with `status`; how many."""
    claims = await store.claim(forwarder, 100, at, at + M, "me")
    for claimed in claims:
        await store.complete(completion(claimed, status, at=at, next_at=next_at, error="no"))
    return len(claims)


async def drain(store: Store, policy: RetentionPolicy, batch_size: int) -> list[PruneResult]:
    """Prune until a call deletes nothing; the result of each call that deleted something."""
    results = []
    while (result := await store.prune(policy, PRUNE_AT, batch_size)).total:
        results.append(result)
        assert len(results) < 50, "pruning does not converge"
    return results


class RetentionContract:
    """Tests every Store implementation's pruning must pass."""

    async def test_an_empty_policy_deletes_nothing(self, store: Store) -> None:
        """A policy with no limit keeps everything, however old."""
        await deploy(store, "v1", forwarders=("hook",))
        await settle(store, "hook", "delivered", T0 + M)
        assert await store.prune(RetentionPolicy(), PRUNE_AT, 100) == PruneResult()
        assert len((await store.feed_after(FeedCursor(), 10)).attempts) == 1

    async def test_old_attempts_of_finished_deliveries_go_and_the_count_stays(
        self, store: Store
    ) -> None:
        """Attempts past the limit are deleted once their delivery is finished; the delivery
        still says how many attempts it took; a pending delivery keeps its attempts."""
        _, (done,) = await deploy(store, "v1", forwarders=("done",))
        _, (waiting,) = await deploy(store, "v2", forwarders=("waiting",))
        _, (fresh,) = await deploy(store, "v3", at=RECENT, forwarders=("fresh",))
        await settle(store, "done", "pending", T0 + M, next_at=T0 + 2 * M)
        await settle(store, "done", "delivered", T0 + 2 * M)
        await settle(store, "waiting", "pending", T0 + M, next_at=FAR)
        await settle(store, "fresh", "delivered", RECENT)

        policy = RetentionPolicy(attempts=WEEK)
        assert await store.prune(policy, PRUNE_AT, 100) == PruneResult(attempts=2)
        found = await store.get_delivery(done)
        assert found is not None
        assert (found.status, found.attempts, found.attempt_log) == ("delivered", 2, [])
        for kept in (waiting, fresh):
            delivery = await store.get_delivery(kept)
            assert delivery is not None and len(delivery.attempt_log or []) == 1
        assert await store.prune(policy, PRUNE_AT, 100) == PruneResult()

    async def test_old_finished_deliveries_go_with_their_attempts(self, store: Store) -> None:
        """Delivered, skipped and dead deliveries past the limit are deleted; pending and
        recent ones stay."""
        finished = []
        endings: tuple[tuple[str, DeliveryStatus], ...] = (
            ("a", "delivered"),
            ("b", "skipped"),
            ("c", "dead"),
        )
        for forwarder, status in endings:
            _, (delivery_id,) = await deploy(store, forwarder, forwarders=(forwarder,))
            await settle(store, forwarder, status, T0 + M)
            finished.append(delivery_id)
        _, (pending,) = await deploy(store, "d", forwarders=("d",))
        await settle(store, "d", "pending", T0 + M, next_at=FAR)
        _, (fresh,) = await deploy(store, "e", at=RECENT, forwarders=("e",))
        await settle(store, "e", "delivered", RECENT)

        result = await store.prune(RetentionPolicy(deliveries=WEEK), PRUNE_AT, 100)
        assert result == PruneResult(attempts=3, deliveries=3)
        for delivery_id in finished:
            assert await store.get_delivery(delivery_id) is None
        left = await store.list_deliveries(DeliveryQuery())
        assert {d.id for d in left} == {pending, fresh}
        kept = await store.get_delivery(pending)
        assert kept is not None and kept.status == "pending" and len(kept.attempt_log or []) == 1

    async def test_old_events_go_once_none_of_their_deliveries_is_pending(
        self, store: Store
    ) -> None:
        """Events past the limit are deleted with their finished deliveries; an event with a
        pending delivery (a dead one retried included) stays and can still be delivered;
        deployments stay."""
        done, _ = await deploy(store, "v1", forwarders=("a",))
        await settle(store, "a", "delivered", T0 + M)
        busy, _ = await deploy(store, "v2", at=T0 + S, forwarders=("b",))
        revived, (dead,) = await deploy(store, "v3", at=T0 + 2 * S, forwarders=("c",))
        await settle(store, "c", "dead", T0 + M)
        await store.retry_now(dead, FAR)
        await deploy(store, "v4", at=T0 + 3 * S)
        fresh, _ = await deploy(store, "v5", at=RECENT)

        result = await store.prune(RetentionPolicy(events=WEEK), PRUNE_AT, 100)
        assert result == PruneResult(attempts=1, deliveries=1, events=2)
        page = await store.feed_after(FeedCursor(), 100)
        assert [e.deployment_id for e in page.events] == [busy.id, revived.id, fresh.id]
        (claimed,) = await store.claim("b", 10, PRUNE_AT, PRUNE_AT + M, "me")
        assert claimed.deployment_id == busy.id and claimed.payload["version"] == "v2"
        assert await store.get_record("deployment", "api", done.id) is not None

    async def test_each_call_deletes_at_most_one_batch_per_rule(self, store: Store) -> None:
        """`batch_size` bounds what one call deletes of each rule's rows, and repeated calls
        converge to nothing left."""
        for i in range(5):
            await deploy(store, f"v{i}", at=T0 + i * S, forwarders=("hook",))
        assert await settle(store, "hook", "delivered", T0 + M) == 5
        for kind in ("attempts", "deliveries", "events"):
            results = await drain(store, RetentionPolicy(**{kind: WEEK}), 2)
            assert [getattr(r, kind) for r in results] == [2, 2, 1], kind
        page = await store.feed_after(FeedCursor(), 100)
        assert (page.events, page.attempts) == ([], [])

    async def test_deployments_go_except_the_latest_the_live_and_the_busy(
        self, store: Store
    ) -> None:
        """Old deployments and builds are deleted with their events, deliveries and output;
        the latest of each component, kind and stage, the live one, those with a pending
        delivery and recent ones stay, and releases lose only the deleted ones."""
        old, _ = await deploy(store, "v1", stage="production", finished_at=T0, forwarders=("a",))
        await settle(store, "a", "delivered", T0 + M)
        live, _ = await deploy(store, "v2", stage="production", finished_at=T0 + M)
        failed, _ = await deploy(
            store, "v3", stage="production", finished_at=T0 + 2 * M, status=Status.BUILD_ERROR
        )
        staging, _ = await deploy(store, "v1", stage="staging")
        old_build, _ = await deploy(store, "b1", kind="build", finished_at=T0)
        build, _ = await deploy(store, "b2", kind="build", finished_at=T0 + M)
        busy, _ = await deploy(store, "w1", component="web", forwarders=("b",))
        await deploy(store, "w2", component="web", finished_at=T0 + M)
        recent, _ = await deploy(store, "n1", component="new", at=RECENT)
        await deploy(store, "n2", component="new", at=RECENT + M)
        await store.append_output(old.id, ["building", "done"], T0, 1000)
        release_id = str(uuid.uuid4())
        event = NewEvent(str(uuid.uuid4()), "release.created", RECENT, {"id": release_id})
        await store.record_release(
            ReleaseCommand(release_id, "R1", None, None, "ci", RECENT, [live.id, old.id], event)
        )

        policy = RetentionPolicy(deployments=WEEK)
        result = await store.prune(policy, PRUNE_AT, 100)
        assert result == PruneResult(attempts=1, deliveries=1, events=2, outputs=2, deployments=2)
        assert await store.get_record("deployment", "api", old.id) is None
        assert await store.get_record("build", "api", old_build.id) is None
        for kind, kept in (("deployment", live), ("build", build), ("deployment", recent)):
            assert await store.get_record(kind, kept.component, kept.id) is not None
        assert await store.get_record("deployment", "web", busy.id) is not None
        assert await store.read_output(old.id) == []
        release = await store.get_release(release_id)
        assert release is not None and [d.id for d in release.deployments] == [live.id]
        components = {row.slug: row for row in await store.list_components()}
        assert {d.stage: d.id for d in components["api"].latest} == {
            "production": failed.id,
            "staging": staging.id,
        }
        assert await store.live_ids([("api", "production")]) == {("api", "production"): live.id}
        assert await store.prune(policy, PRUNE_AT, 100) == PruneResult()

    async def test_old_idempotency_keys_go(self, store: Store) -> None:
        """A key past the limit is forgotten (a repeat records anew); a recent one is kept."""
        await store.record(make_command(make_record("api", "v1"), idempotency=("old", "fp")))
        recent = make_record("api", "v2", created_at=RECENT)
        await store.record(make_command(recent, idempotency=("new", "fp")))
        result = await store.prune(RetentionPolicy(idempotency_keys=WEEK), PRUNE_AT, 100)
        assert result == PruneResult(idempotency_keys=1)
        again = await store.record(
            make_command(make_record("api", "v1"), idempotency=("old", "other"))
        )
        assert again.replayed is False
        with pytest.raises(IdempotencyConflict):
            await store.record(make_command(make_record("api", "v3"), idempotency=("new", "x")))

    async def test_sequence_numbers_are_never_reused(self, store: Store) -> None:
        """After the newest events and attempts are pruned, new ones still get higher numbers,
        so that a feed position taken before never skips them."""
        for i in range(3):
            await deploy(store, f"v{i}", at=T0 + i * S, forwarders=("hook",))
        await settle(store, "hook", "delivered", T0 + M)
        before = await store.feed_position()
        await drain(store, RetentionPolicy(events=WEEK), 100)
        assert (await store.feed_after(FeedCursor(), 100)).events == []
        new, _ = await deploy(store, "v9", at=RECENT, forwarders=("hook",))
        await settle(store, "hook", "delivered", RECENT)
        page = await store.feed_after(before, 100)
        assert [e.deployment_id for e in page.events] == [new.id]
        assert page.events[0].seq > before.events
        assert [a.deployment_id for a in page.attempts] == [new.id]
        assert page.attempts[0].seq > before.attempts

    async def test_every_rule_together_converges_and_keeps_what_is_needed(
        self, store: Store
    ) -> None:
        """With every limit set, batches run out; then only the pending, the recent, the
        latest and the live remain."""
        records = [
            (await deploy(store, f"v{i}", at=T0 + i * S, forwarders=("hook", "other")))[0]
            for i in range(6)
        ]
        await settle(store, "hook", "delivered", T0 + M)
        await settle(store, "other", "pending", T0 + M, next_at=FAR)  # v0 … v5 stay busy
        await deploy(store, "w1", component="web", forwarders=("hook",))
        await settle(store, "hook", "dead", T0 + M)
        latest, _ = await deploy(store, "w2", component="web", at=RECENT)
        limit = RetentionPolicy(WEEK, WEEK, WEEK, WEEK, WEEK)
        results = await drain(store, limit, 3)
        total = sum(results, PruneResult())
        assert total == PruneResult(attempts=7, deliveries=7, events=1, deployments=1)
        assert await store.prune(limit, PRUNE_AT, 3) == PruneResult()
        left = await store.list_deliveries(DeliveryQuery(limit=100))
        assert {(d.deployment_id, d.status) for d in left} == {(r.id, "pending") for r in records}
        events = (await store.feed_after(FeedCursor(), 100)).events
        assert [e.deployment_id for e in events] == [r.id for r in records] + [latest.id]
