"""Status changes (relay/records/transitions.py) on the in-memory store: events, hooks, rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from relay.auth import Principal
from relay.errors import Forbidden, NotFound, ValidationFailed
from relay.models import Status
from relay.records.lifecycle import InvalidTransition
from relay.records.service import RecordService
from relay.records.transitions import TransitionService
from relay.store.base import NewDelivery, NewEvent
from relay.store.memory.store import MemoryStore

CI = Principal("ci", frozenset({"events:write", "events:read"}), ("*",))
READER = Principal("reader", frozenset({"events:read"}), ("*",))


def _services() -> tuple[TransitionService, MemoryStore, list[NewEvent]]:
    store = MemoryStore()
    seen: list[NewEvent] = []

    def plan(event: NewEvent, record: Any) -> list[NewDelivery]:
        return [NewDelivery(f"d-{event.id}", "hook", event.created_at)]

    records = RecordService(store, plan, on_recorded=seen.append)
    return TransitionService(records), store, seen


async def _start(service: TransitionService, **fields: Any) -> str:
    body = {"version": "v1", "stage": "production", "status": "queued", **fields}
    result = await service.records.record("deployment", "api", body, CI)
    record_id: str = result.answer.body["id"]
    return record_id


async def test_a_started_deployment_has_a_start_time_and_a_started_event() -> None:
    """POST with an in-progress status records deployment.started and sets started_at."""
    service, _, seen = _services()
    record_id = await _start(service)
    record = await service.records.get("deployment", "api", record_id, CI)
    assert record.started_at == record.created_at and record.finished_at is None
    assert record.is_deploying is True
    assert [e.type for e in seen] == ["deployment.started"]


async def test_each_move_is_one_event_through_the_outbox_and_the_hook() -> None:
    """queued → building → success: status_changed then completed, each with deliveries."""
    service, store, seen = _services()
    record_id = await _start(service)
    building, _ = await service.patch("api", record_id, {"status": "building"}, CI)
    assert building.status == Status.BUILDING and building.result is None
    done, _ = await service.patch("api", record_id, {"status": "success"}, CI)
    assert (done.status, done.result, done.is_deploying) == (Status.SUCCESS, "success", False)
    assert done.finished_at is not None and done.is_live is True
    assert [e.type for e in seen] == [
        "deployment.started",
        "deployment.status_changed",
        "deployment.completed",
    ]
    assert [e.type for e in store.event_rows] == [e.type for e in seen]
    assert [r.event.type for r in store.rows.values()] == [e.type for e in seen]
    assert seen[-1].data["status"] == "success" and "is_live" not in seen[-1].data


async def test_patch_sets_the_changeable_fields_and_merges_meta_data() -> None:
    """result, finished_at, host… are set; meta_data keys are merged into the old ones."""
    service, _, seen = _services()
    record_id = await _start(service, meta_data={"a": 1, "b": 2})
    at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    body = {
        "status": "crashed-error",
        "result": "failure",
        "finished_at": "2024-05-01T14:00:00+02:00",
        "host": "web-2",
        "meta_data": {"b": 3, "c": 4},
        "colour": "red",
    }
    record, warnings = await service.patch("api", record_id, body, CI)
    assert (record.status, record.result, record.host) == (
        Status.CRASHED_ERROR,
        "failure",
        "web-2",
    )
    assert record.finished_at == at
    assert record.meta_data == {"a": 1, "b": 3, "c": 4}
    assert warnings == ["unknown field 'colour' was ignored"]
    assert seen[-1].type == "deployment.completed"


async def test_terminal_fields_with_an_in_progress_status_are_refused() -> None:
    """A result or finished_at with a non-terminal status is a 422 naming the fields."""
    service, _, seen = _services()
    record_id = await _start(service)
    with pytest.raises(ValidationFailed) as caught:
        await service.patch("api", record_id, {"status": "building", "result": "ok"}, CI)
    assert [d["field"] for d in caught.value.details] == ["result"]
    assert len(seen) == 1


async def test_a_missing_or_unknown_status_is_a_validation_error() -> None:
    """PATCH needs a status of the lifecycle vocabulary."""
    service, _, _ = _services()
    record_id = await _start(service)
    for body in ({}, {"status": "done"}):
        with pytest.raises(ValidationFailed) as caught:
            await service.patch("api", record_id, body, CI)
        assert [d["field"] for d in caught.value.details] == ["status"]


async def test_invalid_moves_change_nothing() -> None:
    """Going back or leaving a terminal status is a 409; no event is recorded."""
    service, _, seen = _services()
    record_id = await _start(service, status="pushing")
    with pytest.raises(InvalidTransition) as back:
        await service.patch("api", record_id, {"status": "building"}, CI)
    assert back.value.to_json()["error"]["current_status"] == "pushing"
    await service.cancel("api", record_id, CI)
    with pytest.raises(InvalidTransition) as ended:
        await service.cancel("api", record_id, CI)
    assert ended.value.to_json()["error"]["allowed_next"] == []
    assert [e.type for e in seen] == ["deployment.started", "deployment.cancelled"]
    record = await service.records.get("deployment", "api", record_id, CI)
    assert (record.status, record.result) == (Status.ABORTED, "aborted")


async def test_a_concurrent_change_wins_and_the_late_one_gets_409() -> None:
    """Two moves from the same loaded status: the second finds it changed and fails."""
    service, store, seen = _services()
    record_id = await _start(service)
    loaded = await store.get_record("deployment", "api", record_id)
    assert loaded is not None
    await service.move(loaded, Status.SUCCESS, {})
    with pytest.raises(InvalidTransition, match="changed while") as caught:
        await service.move(loaded, Status.ABORTED, {})
    assert caught.value.to_json()["error"]["current_status"] == "success"
    assert [e.type for e in seen] == ["deployment.started", "deployment.completed"]


async def test_unknown_deployments_and_missing_scopes() -> None:
    """404 for an unknown id or a build's id; 403 without events:write."""
    service, _, _ = _services()
    record_id = await _start(service)
    with pytest.raises(NotFound):
        await service.patch("api", "nope", {"status": "success"}, CI)
    with pytest.raises(NotFound):
        await service.cancel("web", record_id, CI)
    with pytest.raises(Forbidden):
        await service.cancel("api", record_id, READER)


async def test_a_rollback_through_the_lifecycle_reverts_the_replaced_one() -> None:
    """v1 → v2 → v1 where the third ends through PATCH: rollback, v2 reverted."""
    service, _, seen = _services()
    records = service.records
    first = await records.record("deployment", "api", {"version": "v1", "stage": "prod"}, CI)
    second = await records.record("deployment", "api", {"version": "v2", "stage": "prod"}, CI)
    third = await records.record(
        "deployment", "api", {"version": "v1", "stage": "prod", "status": "building"}, CI
    )
    done, _ = await service.patch("api", third.answer.body["id"], {"status": "success"}, CI)
    assert done.is_rollback is True and done.is_live is True
    assert seen[-1].data["is_rollback"] is True
    v2 = await records.get("deployment", "api", second.answer.body["id"], CI)
    assert (v2.reverted, v2.reverted_by, v2.is_live) == (True, "ci", False)
    assert v2.reverted_at == done.finished_at
    v1 = await records.get("deployment", "api", first.answer.body["id"], CI)
    assert (v1.is_rollback, v1.reverted, v1.is_live) == (False, False, False)
