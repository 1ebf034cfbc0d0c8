"""Dashboard storage every Store backend shares: subclass `DashboardContract` and give it a
`store`.

tests/unit/test_memory_dashboard.py runs it on the in-memory store,
tests/integration/test_sqlite_dashboard.py on a real SQLite file and
tests/integration/test_postgres_dashboard.py on PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

from relay.models import Status
from relay.store.base import Store
from relay.store.dashboard_base import MAX_SUMMARY_IDS, SessionRecord
from tests.lifecycle_contract import finished, started
from tests.outbox_contract import completion
from tests.support import T0, make_command, make_record

HOUR = timedelta(hours=1)


def session(name: str, *, expires_in: timedelta = HOUR) -> SessionRecord:
    """A session opened at T0 with token hash `token-of-<name>`."""
    return SessionRecord(f"session-{name}", f"token-of-{name}", T0, T0 + expires_in)


class DashboardContract:
    """Sessions and batched delivery summaries."""

    async def test_a_stored_session_is_found_until_it_expires(self, store: Store) -> None:
        """find_session answers the session while it is valid, None from its expiry on."""
        await store.add_session(session("a"))
        found = await store.find_session("session-a", T0 + timedelta(minutes=59))
        assert found == session("a")
        assert await store.find_session("session-a", T0 + HOUR) is None
        assert await store.find_session("session-unknown", T0) is None

    async def test_a_deleted_session_is_gone(self, store: Store) -> None:
        """delete_session ends exactly that session, and says whether there was one."""
        await store.add_session(session("a"))
        await store.add_session(session("b"))
        assert await store.delete_session("session-a") is True
        assert await store.delete_session("session-a") is False
        assert await store.find_session("session-a", T0) is None
        assert await store.find_session("session-b", T0) == session("b")

    async def test_expired_sessions_are_deleted_in_bulk(self, store: Store) -> None:
        """delete_expired_sessions removes the expired rows only and counts them."""
        await store.add_session(session("short", expires_in=timedelta(minutes=5)))
        await store.add_session(session("long", expires_in=HOUR))
        assert await store.delete_expired_sessions(T0 + timedelta(minutes=10)) == 1
        assert await store.find_session("session-long", T0) is not None
        assert await store.delete_session("session-short") is False

    async def test_summaries_of_many_deployments_in_one_call(self, store: Store) -> None:
        """delivery_summaries gives each known deployment its component and deliveries, like
        get_record, in the order asked; unknown ids are left out."""
        one = make_record("api", "1.0", stage="production")
        two = make_record("web", "2.0", stage="staging")
        await store.record(make_command(one, forwarders=("grafana", "sentry")))
        await store.record(make_command(two, forwarders=("webhook",)))
        claims = await store.claim("sentry", 10, T0 + HOUR, T0 + 2 * HOUR, "me")
        await store.complete(completion(claims[0], "dead", at=T0 + HOUR, error="no"))
        found = await store.delivery_summaries([two.id, "missing", one.id, two.id])
        assert [(f.deployment_id, f.component) for f in found] == [
            (two.id, "web"),
            (one.id, "api"),
        ]
        got = {d.forwarder: (d.status, d.attempts) for d in found[1].deliveries}
        assert got == {"grafana": ("pending", 0), "sentry": ("dead", 1)}
        single = await store.get_record("deployment", "api", one.id)
        assert single is not None and single.deliveries == found[1].deliveries
        assert await store.delivery_summaries([]) == []

    async def test_summaries_are_bounded(self, store: Store) -> None:
        """At most MAX_SUMMARY_IDS deployments are read by one call."""
        record = make_record("api", "1.0")
        await store.record(make_command(record, forwarders=("grafana",)))
        ids = [f"missing-{i}" for i in range(MAX_SUMMARY_IDS)] + [record.id]
        assert await store.delivery_summaries(ids) == []

    async def test_the_events_of_one_deployment_oldest_first(self, store: Store) -> None:
        """deployment_events lists that deployment's events in order (its status history),
        and no other deployment's."""
        one = await started(store, "1.0", T0)
        await started(store, "2.0", T0 + HOUR)
        assert await store.transition(finished(one, Status.SUCCESS, T0 + 2 * HOUR))
        found = await store.deployment_events(one.id)
        assert [e.type for e in found] == ["deployment.created", "deployment.completed"]
        assert [e.payload["status"] for e in found] == ["building", "success"]
        assert {e.deployment_id for e in found} == {one.id}
        assert await store.deployment_events("missing") == []
