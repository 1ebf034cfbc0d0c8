"""The lifecycle side every Store backend shares: subclass `LifecycleContract` and give it
a `store` (status changes, rollback facts, live deployments, output logs, releases).

tests/unit/test_memory_lifecycle.py runs it on the in-memory store,
tests/integration/test_sqlite_lifecycle.py on a real SQLite file.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from relay.models import Deployment, Status, event_payload
from relay.store.base import ListQuery, NewDelivery, NewEvent, Store
from relay.store.lifecycle_base import ReleaseCommand, TransitionCommand, output_bytes
from tests.support import T0, make_command, make_record, minutes


def _event(record: Deployment, event_type: str, at: datetime) -> NewEvent:
    return NewEvent(
        id=str(uuid.uuid4()), type=event_type, created_at=at, data=event_payload(record)
    )


def finished(record: Deployment, status: Status, at: datetime) -> TransitionCommand:
    """The command moving an in-progress `record` to a terminal `status` at `at`."""
    done = record.model_copy(
        update={"status": status, "result": status.value, "finished_at": at, "updated_at": at}
    )
    event = _event(done, "deployment.completed", at)
    delivery = NewDelivery(id=str(uuid.uuid4()), forwarder="hook", next_attempt_at=at)
    return TransitionCommand(
        record=done, expected=record.status, event=event, deliveries=[delivery]
    )


async def success(store: Store, version: str, at: datetime, **changes: Any) -> Deployment:
    """Record a successful production deployment of `api` finished at `at`."""
    record = make_record("api", version, stage="production", finished_at=at, **changes)
    command = make_command(record)
    await store.record(command)
    found = await store.get_record("deployment", "api", record.id)
    assert found is not None
    assert command.event.data["is_rollback"] is found.is_rollback
    return found


async def started(store: Store, version: str, at: datetime) -> Deployment:
    """Record a production deployment of `api` in progress (status building)."""
    record = make_record(
        "api", version, stage="production", result=None, status=Status.BUILDING, created_at=at
    )
    await store.record(make_command(record))
    return record


class LifecycleContract:
    """Tests every Store implementation must pass."""

    async def test_transition_updates_and_records_event_and_deliveries(self, store: Store) -> None:
        """A transition changes the row and adds its event with one outbox row per forwarder."""
        record = await started(store, "v1", T0)
        command = finished(record, Status.SUCCESS, T0 + minutes(3))
        stored = await store.transition(command)
        assert stored is not None
        assert (stored.status, stored.result, stored.finished_at) == (
            Status.SUCCESS,
            "success",
            T0 + minutes(3),
        )
        again = await store.get_record("deployment", "api", record.id)
        assert again is not None and again.status == Status.SUCCESS
        assert again.deliveries is not None
        assert [(d.forwarder, d.status) for d in again.deliveries] == [("hook", "pending")]
        events = await store.events_between(T0 - minutes(1), T0 + minutes(10))
        assert [e.type for e in events] == ["deployment.created", "deployment.completed"]
        assert events[1].deployment_id == record.id
        assert events[1].seq > events[0].seq

    async def test_transition_from_a_stale_status_writes_nothing(self, store: Store) -> None:
        """A transition whose expected status is no longer current returns None, no event."""
        record = await started(store, "v1", T0)
        assert await store.transition(finished(record, Status.ABORTED, T0 + minutes(1)))
        assert await store.transition(finished(record, Status.SUCCESS, T0 + minutes(2))) is None
        found = await store.get_record("deployment", "api", record.id)
        assert found is not None and found.status == Status.ABORTED
        events = await store.events_between(T0 - minutes(1), T0 + minutes(10))
        assert [e.type for e in events] == ["deployment.created", "deployment.completed"]

    async def test_a_finished_deployment_sorts_by_its_finish_time(self, store: Store) -> None:
        """After a transition, listings place the deployment at its finished_at."""
        record = await started(store, "v1", T0)
        later = await success(store, "v2", T0 + minutes(5))
        await store.transition(finished(record, Status.SUCCESS, T0 + minutes(9)))
        page = await store.list_records(ListQuery(kind="deployment", component="api"))
        assert [d.id for d in page.items] == [record.id, later.id]

    async def test_latest_of_version_is_the_last_recorded(self, store: Store) -> None:
        """The match of (component, stage, version) is the most recently recorded one."""
        first = await success(store, "v1", T0)
        second = await success(store, "v1", T0 - minutes(5))  # recorded later, older time
        await success(store, "v2", T0 + minutes(1))
        found = await store.latest_of_version("api", "production", "v1")
        assert found is not None and found.id == second.id != first.id
        assert await store.latest_of_version("api", "staging", "v1") is None
        assert await store.latest_of_version("web", "production", "v1") is None

    async def test_live_is_the_latest_success_per_component_and_stage(self, store: Store) -> None:
        """live_ids gives the newest successful deployment of each component and stage."""
        old = await success(store, "v1", T0)
        live = await success(store, "v2", T0 + minutes(1))
        await success(store, "v3", T0 + minutes(2), result="failure", status=Status.BUILD_ERROR)
        await started(store, "v4", T0 + minutes(3))
        staging = make_record("api", "v9", stage="staging", finished_at=T0)
        web = make_record("web", "w1", finished_at=T0)
        for record in (staging, web):
            await store.record(make_command(record))
        keys = [("api", "production"), ("api", "staging"), ("web", None), ("api", "qa")]
        assert await store.live_ids(keys) == {
            ("api", "production"): live.id,
            ("api", "staging"): staging.id,
            ("web", None): web.id,
        }
        assert old.id not in (await store.live_ids(keys)).values()
        assert await store.live_ids([]) == {}

    async def test_v1_v2_v1_is_a_rollback_that_reverts_v2(self, store: Store) -> None:
        """Going back to an earlier live version flags it a rollback and v2 reverted."""
        first = await success(store, "v1", T0)
        second = await success(store, "v2", T0 + minutes(1))
        third = await success(store, "v1", T0 + minutes(2))
        assert (first.is_rollback, second.is_rollback, third.is_rollback) == (False, False, True)
        v2 = await store.get_record("deployment", "api", second.id)
        assert v2 is not None
        assert (v2.reverted, v2.reverted_at, v2.reverted_by) == (True, T0 + minutes(2), "ci")
        v1 = await store.get_record("deployment", "api", first.id)
        assert v1 is not None and v1.reverted is False

    async def test_new_versions_and_redeploys_are_not_rollbacks(self, store: Store) -> None:
        """v1 → v2 → v3 and a redeploy of the live version flag nothing."""
        records = [
            await success(store, version, T0 + minutes(i))
            for i, version in enumerate(["v1", "v2", "v3", "v3"])
        ]
        assert [r.is_rollback for r in records] == [False] * 4
        for record in records:
            found = await store.get_record("deployment", "api", record.id)
            assert found is not None and found.reverted is False

    async def test_a_backdated_success_replaces_nothing(self, store: Store) -> None:
        """A success older than the live one is not live, so it is no rollback."""
        await success(store, "v1", T0)
        live = await success(store, "v2", T0 + minutes(5))
        late = await success(store, "v1", T0 + minutes(1))
        assert late.is_rollback is False
        found = await store.get_record("deployment", "api", live.id)
        assert found is not None and found.reverted is False

    async def test_rollback_decided_when_a_transition_succeeds(self, store: Store) -> None:
        """A lifecycle deployment that ends in success back on v1 is a rollback too."""
        await success(store, "v1", T0)
        second = await success(store, "v2", T0 + minutes(1))
        back = await started(store, "v1", T0 + minutes(2))
        command = finished(back, Status.SUCCESS, T0 + minutes(3))
        stored = await store.transition(command)
        assert stored is not None and stored.is_rollback is True
        assert command.event.data["is_rollback"] is True
        v2 = await store.get_record("deployment", "api", second.id)
        assert v2 is not None and v2.reverted_at == T0 + minutes(3)

    async def test_other_stages_do_not_count(self, store: Store) -> None:
        """Rollback history is per component and stage."""
        await store.record(make_command(make_record("api", "v1", stage="staging", finished_at=T0)))
        await success(store, "v2", T0 + minutes(1))
        again = await success(store, "v1", T0 + minutes(2))
        assert again.is_rollback is False

    async def test_output_appends_in_order_within_the_limit(self, store: Store) -> None:
        """Lines come back in append order; an append past the limit writes nothing."""
        record = await started(store, "v1", T0)
        first = await store.append_output(record.id, ["a", "béta"], T0, 100)
        assert first is not None and (first.lines, first.bytes) == (2, output_bytes(["a", "béta"]))
        second = await store.append_output(record.id, ["c"], T0, 100)
        assert second is not None and (second.lines, second.bytes) == (3, first.bytes + 2)
        assert await store.append_output(record.id, ["x" * 100], T0, 100) is None
        assert await store.read_output(record.id) == ["a", "béta", "c"]
        assert await store.read_output("no-such-id") == []

    async def test_deployments_by_ids_skips_unknown_ids_and_builds(self, store: Store) -> None:
        """Only existing deployments (not builds) are found."""
        deployment = await success(store, "v1", T0)
        build = make_record("api", "v1", kind="build")
        await store.record(make_command(build))
        found = await store.deployments_by_ids([deployment.id, build.id, "nope"])
        assert list(found) == [deployment.id]

    async def test_releases_read_back_newest_first_with_paging(self, store: Store) -> None:
        """A release keeps its deployments in order; listings page newest first."""
        one = await success(store, "v1", T0)
        two = await success(store, "v2", T0 + minutes(1))
        ids = []
        for i in range(3):
            release_id = str(uuid.uuid4())
            at = T0 + timedelta(hours=i)
            event = NewEvent(str(uuid.uuid4()), "release.created", at, {"id": release_id})
            await store.record_release(
                ReleaseCommand(
                    id=release_id,
                    name=f"R{i}",
                    code_name="Fünke" if i == 0 else None,
                    notes="notes",
                    triggered_by="ci",
                    created_at=at,
                    deployment_ids=[two.id, one.id],
                    event=event,
                    deliveries=[NewDelivery(str(uuid.uuid4()), "hook", at)],
                )
            )
            ids.append(release_id)
        found = await store.get_release(ids[0])
        assert found is not None
        assert (found.name, found.code_name, found.notes, found.triggered_by) == (
            "R0",
            "Fünke",
            "notes",
            "ci",
        )
        assert [d.id for d in found.deployments] == [two.id, one.id]
        assert await store.get_release("nope") is None
        first = await store.list_releases(2)
        assert [r.id for r in first.items] == [ids[2], ids[1]] and first.next_cursor
        rest = await store.list_releases(2, first.next_cursor)
        assert [r.id for r in rest.items] == [ids[0]] and rest.next_cursor is None
        events = await store.events_between(T0, T0 + timedelta(hours=5))
        assert [e.type for e in events if e.deployment_id is None] == ["release.created"] * 3
