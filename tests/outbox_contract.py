"""The delivery side every Store backend shares: subclass `OutboxContract`, give it a
`store` fixture and a way to add a later event to an existing deployment.

tests/unit/test_memory_outbox.py runs it on the in-memory store,
tests/integration/test_sqlite_outbox.py on a real SQLite file.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from relay.delivery.circuit import CircuitSnapshot
from relay.models import Attempt, DeliveryStatus, Deployment
from relay.store.base import (
    Claimed,
    Completion,
    DeliveryQuery,
    NewDelivery,
    RecordCommand,
    Store,
)
from tests.support import T0, make_command, make_record

S = timedelta(seconds=1)
NOW = T0 + timedelta(minutes=10)
LEASE = NOW + timedelta(minutes=1)


def completion(
    claimed: Claimed,
    status: DeliveryStatus,
    *,
    at: datetime = NOW,
    next_at: datetime | None = None,
    error: str | None = None,
    status_code: int | None = None,
    state: dict[str, Any] | None = None,
    shared: dict[str, Any] | None = None,
) -> Completion:
    """The outcome of the attempt after `claimed`, finished at `at`."""
    outcome = {"delivered": "delivered", "skipped": "skipped", "dead": "dead"}.get(status, "retry")
    return Completion(
        delivery_id=claimed.id,
        forwarder=claimed.forwarder,
        deployment_id=claimed.deployment_id,
        attempt=Attempt(
            number=claimed.attempts + 1,
            started_at=at - 0.5 * S,
            duration_ms=500.0,
            status_code=status_code,
            outcome=outcome,  # type: ignore[arg-type]
            error=error,
            response_excerpt='{"error": "no"}' if error else None,
        ),
        status=status,
        next_attempt_at=next_at,
        state=state or {},
        shared=shared or {},
        error=error,
        status_code=status_code,
        finished_at=at,
    )


def later_command(record: Deployment, forwarders: tuple[str, ...], at: datetime) -> RecordCommand:
    """A new event of an existing deployment at `at`, with deliveries due then."""
    command = make_command(record, forwarders=forwarders)
    event = replace(command.event, type="deployment.status_changed", created_at=at)
    deliveries = [replace(d, next_attempt_at=at) for d in command.deliveries]
    return replace(command, event=event, deliveries=deliveries)


class OutboxContract:
    """Tests every Store implementation's outbox must pass."""

    async def later_event(
        self, store: Store, record: Deployment, forwarders: tuple[str, ...], at: datetime
    ) -> list[str]:
        """Record another event of `record`'s deployment (due at `at`); its delivery ids."""
        raise NotImplementedError

    async def deployment(
        self,
        store: Store,
        forwarders: tuple[str, ...] = ("hook",),
        *,
        at: datetime = T0,
        component: str = "api",
    ) -> tuple[Deployment, list[str]]:
        """Record a deployment whose deliveries are due at `at`; it and its delivery ids."""
        record = make_record(component, f"v-{at.timestamp()}", created_at=at)
        command = make_command(record, forwarders=forwarders)
        await store.record(command)
        return record, [d.id for d in command.deliveries]

    async def test_claim_leases_due_deliveries_oldest_first(self, store: Store) -> None:
        """A claim returns due deliveries of one forwarder, oldest first, with the event."""
        records = [
            (await self.deployment(store, ("hook", "other"), at=T0 + i * S)) for i in range(3)
        ]
        claims = await store.claim("hook", 10, NOW, LEASE, "me")
        assert [c.deployment_id for c in claims] == [r.id for r, _ in records]
        first = claims[0]
        assert first.forwarder == "hook" and first.attempts == 0
        assert first.event_type == "deployment.created"
        assert first.event_created_at == T0
        assert first.payload["id"] == records[0][0].id and first.payload["version"]
        assert first.state == {} and first.shared == {}
        # Leased: nobody else gets them until the lease ends.
        assert await store.claim("hook", 10, NOW, LEASE, "someone-else") == []
        assert len(await store.claim("other", 10, NOW, LEASE, "me")) == 3

    async def test_claim_honours_limit_and_due_time(self, store: Store) -> None:
        """At most `limit` deliveries are claimed, and none that is not due yet."""
        for i in range(3):
            await self.deployment(store, at=T0 + i * S)
        await self.deployment(store, at=NOW + 1 * S)
        assert len(await store.claim("hook", 2, NOW, LEASE, "me")) == 2
        assert len(await store.claim("hook", 10, NOW, LEASE, "me")) == 1
        assert await store.claim("hook", 10, NOW, LEASE, "me") == []
        assert len(await store.claim("hook", 10, NOW + 1 * S, LEASE, "me")) == 1

    async def test_an_expired_lease_is_claimable_again(self, store: Store) -> None:
        """A crashed owner's claim comes back once its lease has run out."""
        await self.deployment(store)
        (claimed,) = await store.claim("hook", 1, NOW, NOW + 10 * S, "crashed")
        assert await store.claim("hook", 1, NOW + 5 * S, NOW + 20 * S, "me") == []
        (again,) = await store.claim("hook", 1, NOW + 11 * S, NOW + 20 * S, "me")
        assert again.id == claimed.id

    async def test_release_claims_frees_one_owners_leases_at_once(self, store: Store) -> None:
        """Releasing an owner's leases makes its deliveries claimable at once, and no
        other owner's."""
        await self.deployment(store)
        await self.deployment(store, ("other",))
        await store.claim("hook", 1, NOW, LEASE, "a")
        await store.claim("other", 1, NOW, LEASE, "b")
        assert await store.release_claims("nobody") == 0
        assert await store.release_claims("a") == 1
        assert len(await store.claim("hook", 1, NOW, LEASE, "c")) == 1
        assert await store.claim("other", 1, NOW, LEASE, "c") == []

    async def test_one_event_per_deployment_and_forwarder_at_a_time(self, store: Store) -> None:
        """A deployment's later event waits until the earlier one is settled, per forwarder."""
        record, _ = await self.deployment(store, ("hook", "other"))
        await self.later_event(store, record, ("hook", "other"), T0 + 1 * S)
        await self.later_event(store, record, ("hook",), T0 + 2 * S)

        (first,) = await store.claim("hook", 10, NOW, LEASE, "me")
        assert first.event_created_at == T0
        assert len(await store.claim("other", 10, NOW, LEASE, "me")) == 1  # its own queue
        # In flight, then scheduled for a retry: the next event still waits.
        assert await store.claim("hook", 10, NOW, LEASE, "me") == []
        await store.complete(completion(first, "pending", next_at=NOW + 60 * S, error="503"))
        assert await store.claim("hook", 10, NOW + 30 * S, LEASE, "me") == []
        (retried,) = await store.claim("hook", 10, NOW + 60 * S, LEASE, "me")
        assert retried.id == first.id and retried.attempts == 1
        await store.complete(completion(retried, "delivered", at=NOW + 61 * S))

        (second,) = await store.claim("hook", 10, NOW + 61 * S, LEASE, "me")
        assert second.event_created_at == T0 + 1 * S
        await store.complete(completion(second, "dead", at=NOW + 62 * S, error="400"))
        (third,) = await store.claim("hook", 10, NOW + 62 * S, LEASE, "me")
        assert third.event_created_at == T0 + 2 * S

    async def test_complete_records_the_attempt_and_the_new_state(self, store: Store) -> None:
        """An attempt is kept with the delivery's status, error, code and next attempt."""
        _, (delivery_id,) = await self.deployment(store)
        (claimed,) = await store.claim("hook", 1, NOW, LEASE, "me")
        retry_at = NOW + 5 * S
        await store.complete(
            completion(
                claimed,
                "pending",
                next_at=retry_at,
                error="webhook answered HTTP 503",
                status_code=503,
                state={"step": 1},
            )
        )
        found = await store.get_delivery(delivery_id)
        assert found is not None
        assert (found.status, found.attempts, found.next_attempt_at) == ("pending", 1, retry_at)
        assert (found.last_error, found.last_status_code) == ("webhook answered HTTP 503", 503)
        assert found.updated_at == NOW and found.delivered_at is None
        (attempt,) = found.attempt_log or []
        assert (attempt.number, attempt.outcome, attempt.status_code) == (1, "retry", 503)
        assert attempt.started_at == NOW - 0.5 * S and attempt.duration_ms == 500.0
        assert attempt.response_excerpt == '{"error": "no"}'
        assert await store.claim("hook", 1, retry_at - 1 * S, LEASE, "me") == []
        (again,) = await store.claim("hook", 1, retry_at, LEASE, "me")
        assert again.attempts == 1 and again.state == {"step": 1}

        await store.complete(completion(again, "delivered", at=retry_at, status_code=200))
        found = await store.get_delivery(delivery_id)
        assert found is not None
        assert (found.status, found.attempts, found.delivered_at) == ("delivered", 2, retry_at)
        assert found.next_attempt_at is None and found.last_error is None
        assert [a.outcome for a in found.attempt_log or []] == ["retry", "delivered"]

    async def test_complete_many_records_all_or_none(self, store: Store) -> None:
        """Several outcomes written at once are all recorded; with an unknown delivery
        among them it raises and records none of them."""
        record, _ = await self.deployment(store, ("hook", "other"))
        await self.later_event(store, record, ("hook",), T0 + 1 * S)
        await self.deployment(store, ("hook",), at=T0 + 2 * S)
        first, third = await store.claim("hook", 10, NOW, LEASE, "me")
        (other,) = await store.claim("other", 10, NOW, LEASE, "me")
        unknown = replace(first, id="no-such-delivery")
        try:
            await store.complete_many([completion(third, "delivered"), completion(unknown, "dead")])
        except Exception:
            pass
        else:
            raise AssertionError("a completion of an unknown delivery was accepted")
        found = await store.get_delivery(third.id)
        assert found is not None and (found.status, found.attempt_log) == ("pending", [])

        await store.complete_many(
            [
                completion(first, "delivered", shared={"release": "api@1"}),
                completion(third, "pending", next_at=NOW + 60 * S, error="503"),
                completion(other, "dead", error="400"),
            ]
        )
        statuses = {
            d.id: (d.status, d.attempts) for d in await store.list_deliveries(DeliveryQuery())
        }
        assert statuses[first.id] == ("delivered", 1)
        assert statuses[third.id] == ("pending", 1) and statuses[other.id] == ("dead", 1)
        (second,) = await store.claim("hook", 10, NOW, LEASE, "me")  # the next event's turn
        assert second.shared == {"release": "api@1"}
        await store.complete_many([])

    async def test_shared_state_reaches_the_next_event_of_the_deployment(
        self, store: Store
    ) -> None:
        """What one event's send left in `shared` is given to the next event's send."""
        record, _ = await self.deployment(store, ("hook", "other"))
        await self.later_event(store, record, ("hook", "other"), T0 + 1 * S)
        (first,) = await store.claim("hook", 1, NOW, LEASE, "me")
        await store.complete(completion(first, "delivered", shared={"release": "api@1"}))
        (second,) = await store.claim("hook", 1, NOW, LEASE, "me")
        assert second.shared == {"release": "api@1"} and second.state == {}
        # Per forwarder: another forwarder of the same deployment does not see it.
        (other,) = await store.claim("other", 1, NOW, LEASE, "me")
        assert other.shared == {}

    async def test_next_due(self, store: Store) -> None:
        """The earliest pending next_attempt_at, optionally only those later than a time."""
        assert await store.next_due() is None
        await self.deployment(store, at=T0 + 2 * S)
        await self.deployment(store, at=T0 + 5 * S)
        assert await store.next_due() == T0 + 2 * S
        assert await store.next_due(after=T0 + 2 * S) == T0 + 5 * S
        assert await store.next_due(after=T0 + 5 * S) is None
        for claimed in await store.claim("hook", 10, NOW, LEASE, "me"):
            await store.complete(completion(claimed, "delivered"))
        assert await store.next_due() is None

    async def test_retry_now_revives_a_dead_delivery(self, store: Store) -> None:
        """A dead delivery becomes pending and due now; an unknown id is None."""
        _, (delivery_id,) = await self.deployment(store)
        (claimed,) = await store.claim("hook", 1, NOW, LEASE, "me")
        await store.complete(completion(claimed, "dead", error="400"))
        later = NOW + 60 * S
        found = await store.retry_now(delivery_id, later)
        assert found is not None
        assert (found.status, found.next_attempt_at, found.attempts) == ("pending", later, 1)
        assert await store.claim("hook", 1, later - 1 * S, LEASE, "me") == []
        (again,) = await store.claim("hook", 1, later, LEASE, "me")
        assert again.attempts == 1
        assert await store.retry_now("no-such-delivery", later) is None

    async def test_resume_due_brings_waiting_deliveries_forward_only(self, store: Store) -> None:
        """Resuming makes one forwarder's pending deliveries that wait for a retry due now,
        adds no delivery, and leaves settled ones, other forwarders and leases alone."""
        _, (waiting, _) = await self.deployment(store, ("hook", "other"))
        _, (dead,) = await self.deployment(store, ("hook",), at=T0 + 1 * S)
        _, (leased,) = await self.deployment(store, ("hook",), at=T0 + 2 * S)
        far = NOW + timedelta(hours=5)
        first, second, third = await store.claim("hook", 10, NOW, LEASE, "me")
        assert (first.id, second.id, third.id) == (waiting, dead, leased)
        await store.complete(completion(first, "pending", next_at=far, error="503"))
        await store.complete(completion(second, "dead", error="400"))
        (other,) = await store.claim("other", 10, NOW, LEASE, "me")
        await store.complete(completion(other, "pending", next_at=far, error="503"))
        later = NOW + 10 * S
        assert await store.resume_due("hook", later) == 1
        assert await store.resume_due("hook", later) == 0  # nothing waits any more
        (again,) = await store.claim("hook", 10, later, LEASE, "you")  # `leased` stays held
        assert (again.id, again.attempts) == (waiting, 1)
        assert await store.claim("other", 10, later, LEASE, "you") == []
        found = await store.list_deliveries(DeliveryQuery(forwarder="hook"))
        assert sorted(d.status for d in found) == ["dead", "pending", "pending"]

    async def test_list_deliveries_filters(self, store: Store) -> None:
        """Deliveries by status, forwarder, deployment (with attempts) and creation time."""
        first, _ = await self.deployment(store, ("hook", "other"), at=T0)
        second, _ = await self.deployment(store, ("hook",), at=T0 + 10 * S)
        (claimed,) = await store.claim("hook", 1, NOW, LEASE, "me")
        await store.complete(completion(claimed, "dead", error="410 gone", status_code=410))

        def ids(found: list[Any]) -> list[tuple[str | None, str]]:
            return [(d.deployment_id, d.forwarder) for d in found]

        dead = await store.list_deliveries(DeliveryQuery(status="dead"))
        assert ids(dead) == [(first.id, "hook")]
        assert dead[0].last_status_code == 410 and dead[0].component == "api"
        by_hook = await store.list_deliveries(DeliveryQuery(forwarder="hook"))
        assert ids(by_hook) == [(second.id, "hook"), (first.id, "hook")]  # newest first
        assert await store.list_deliveries(DeliveryQuery(status="dead", forwarder="other")) == []
        mine = await store.list_deliveries(DeliveryQuery(deployment_id=first.id))
        assert ids(mine) == [(first.id, "hook"), (first.id, "other")]
        assert [len(d.attempt_log or []) for d in mine] == [1, 0]
        assert mine[0].event_type == "deployment.created"
        recent = await store.list_deliveries(DeliveryQuery(since=T0 + 5 * S))
        assert ids(recent) == [(second.id, "hook")]
        older = await store.list_deliveries(DeliveryQuery(until=T0 + 5 * S))
        assert {d.deployment_id for d in older} == {first.id}
        assert len(await store.list_deliveries(DeliveryQuery(limit=1))) == 1

    async def test_events_between_and_added_deliveries(self, store: Store) -> None:
        """Recorded events are found by time window, and new outbox rows can be added."""
        records = [(await self.deployment(store, at=T0 + i * S))[0] for i in range(4)]
        window = await store.events_between(T0 + 1 * S, T0 + 3 * S)
        assert [e.deployment_id for e in window] == [r.id for r in records[1:3]]
        assert window[0].type == "deployment.created" and window[0].payload["id"] == records[1].id
        rows = [
            (e, NewDelivery(id=f"replay-{e.seq}", forwarder="late", next_attempt_at=NOW))
            for e in window
        ]
        assert await store.add_deliveries(rows) == 2
        claims = await store.claim("late", 10, NOW, LEASE, "me")
        assert {c.id for c in claims} == {"replay-" + str(e.seq) for e in window}
        assert {c.event_id for c in claims} == {e.id for e in window}

    async def test_forwarder_counts(self, store: Store) -> None:
        """Per forwarder: deliveries by status, oldest pending, recent failures, last error."""
        for i in range(4):
            await self.deployment(store, ("hook",), at=T0 + i * S)
        claims = await store.claim("hook", 3, NOW, LEASE, "me")
        await store.complete(completion(claims[0], "delivered", at=NOW))
        await store.complete(completion(claims[1], "dead", at=NOW + 1 * S, error="HTTP 400"))
        await store.complete(
            completion(claims[2], "pending", at=NOW + 2 * S, next_at=NOW + 60 * S, error="HTTP 503")
        )
        counts = (await store.forwarder_counts(T0))["hook"]
        assert (counts.pending, counts.delivered, counts.dead, counts.skipped) == (2, 1, 1, 0)
        assert counts.oldest_pending_at == T0 + 2 * S
        assert (counts.attempts_24h, counts.failures_24h) == (3, 2)
        assert (counts.last_error, counts.last_error_at) == ("HTTP 503", NOW + 2 * S)
        later = await store.forwarder_counts(NOW + 10 * S)
        assert later["hook"].attempts_24h == 0 and later["hook"].pending == 2

    async def test_a_skip_reason_is_not_a_last_error(self, store: Store) -> None:
        """A skipped delivery's reason (nothing to send) never shows as the last error."""
        for i in range(3):
            await self.deployment(store, ("hook", "quiet"), at=T0 + i * S)
        hook = await store.claim("hook", 2, NOW, LEASE, "me")
        await store.complete(completion(hook[0], "dead", at=NOW, error="HTTP 400"))
        await store.complete(completion(hook[1], "skipped", at=NOW + S, error="not for started"))
        quiet = await store.claim("quiet", 1, NOW, LEASE, "me")
        await store.complete(completion(quiet[0], "skipped", at=NOW, error="not for started"))
        counts = await store.forwarder_counts(T0)
        assert (counts["hook"].last_error, counts["hook"].last_error_at) == ("HTTP 400", NOW)
        assert (counts["quiet"].skipped, counts["quiet"].last_error) == (1, None)
        assert counts["quiet"].last_error_at is None

    async def test_disabled_forwarders_persist(self, store: Store) -> None:
        """Disabling keeps the reason; enabling removes it."""
        assert await store.disabled_forwarders() == {}
        await store.set_disabled("hook", "HTTP 410")
        await store.set_disabled("other", "HTTP 410 too")
        await store.set_disabled("other", None)
        assert await store.disabled_forwarders() == {"hook": "HTTP 410"}

    async def test_retry_now_keeps_a_lease_in_force(self, store: Store) -> None:
        """Retrying a delivery whose send is in flight does not let it be claimed twice."""
        _, (delivery_id,) = await self.deployment(store)
        await store.claim("hook", 1, NOW, NOW + 30 * S, "sender")
        found = await store.retry_now(delivery_id, NOW + 1 * S)
        assert found is not None and found.status == "pending"
        assert await store.claim("hook", 1, NOW + 2 * S, LEASE, "other") == []
        assert len(await store.claim("hook", 1, NOW + 31 * S, LEASE, "other")) == 1

    async def test_renew_extends_only_the_owners_pending_leases(self, store: Store) -> None:
        """Renewing keeps a lease alive past its first end; others' and settled rows are not
        touched."""
        _, (mine,) = await self.deployment(store)
        _, (theirs,) = await self.deployment(store, ("other",))
        (claimed,) = await store.claim("hook", 1, NOW, NOW + 10 * S, "me")
        await store.claim("other", 1, NOW, NOW + 10 * S, "them")
        assert await store.renew("me", [mine, theirs, "no-such-id"], NOW + 60 * S) == 1
        assert await store.claim("hook", 1, NOW + 30 * S, LEASE, "thief") == []
        assert len(await store.claim("other", 1, NOW + 30 * S, LEASE, "thief")) == 1
        await store.complete(completion(claimed, "delivered"))
        assert await store.renew("me", [mine], NOW + 90 * S) == 0
        assert await store.renew("me", [], NOW + 90 * S) == 0

    async def test_circuit_state_is_changed_atomically_and_read_back(self, store: Store) -> None:
        """A circuit change sees the stored state and its result is what every reader gets."""
        assert await store.circuits() == {}
        seen: list[CircuitSnapshot] = []

        def fail(shared: CircuitSnapshot) -> CircuitSnapshot:
            seen.append(shared)
            return replace(shared, failures=shared.failures + 1)

        await store.update_circuit("hook", fail)
        opened = CircuitSnapshot(2, NOW + 30 * S, timedelta(seconds=30))
        assert await store.update_circuit("hook", lambda s: replace(opened, failures=2)) == opened
        await store.update_circuit("hook", fail)
        assert seen == [CircuitSnapshot(), replace(opened, failures=2)]
        assert (await store.circuits())["hook"] == replace(opened, failures=3)
        await store.update_circuit("hook", lambda s: CircuitSnapshot())
        await store.set_disabled("other", "HTTP 410")
        circuits = await store.circuits()
        assert circuits["hook"] == CircuitSnapshot()
        assert circuits.get("other", CircuitSnapshot()) == CircuitSnapshot()
        assert await store.disabled_forwarders() == {"other": "HTTP 410"}
