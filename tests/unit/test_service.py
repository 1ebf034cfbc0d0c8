"""Recording and reading deployments and builds (relay/records/service.py), in memory."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.auth import Principal
from relay.errors import (
    Forbidden,
    IdempotencyConflict,
    NotFound,
    RelayError,
    ValidationFailed,
)
from relay.models import Deployment, DeploymentIn, Status
from relay.records.service import RecordService, check_slug, fingerprint, parse_body
from relay.store.base import ListQuery, NewDelivery, NewEvent
from relay.store.memory.store import MemoryStore
from tests.support import RELEASEBITS_FIELDS

CI = Principal("ci", frozenset({"events:write", "events:read"}), ("*",))


def _service(**kwargs: Any) -> tuple[RecordService, MemoryStore]:
    store = MemoryStore()
    return RecordService(store, **kwargs), store


async def test_record_builds_the_deployment_from_the_body() -> None:
    """A recorded deployment carries the body's fields, the component and the token's name."""
    service, _ = _service()
    result = await service.record(
        "deployment",
        "api",
        {"version": "v1", "stage": "production", "meta_data": {"k": "v"}},
        CI,
    )
    record_id = result.answer.body["id"]
    assert result.answer.status == 201
    assert result.answer.location == f"/components/api/deployments/{record_id}"
    uuid.UUID(record_id)
    record = await service.get("deployment", "api", record_id, CI)
    assert (record.version, record.stage, record.meta_data) == ("v1", "production", {"k": "v"})
    assert (record.component, record.kind, record.triggered_by) == ("api", "deployment", "ci")


async def test_finished_at_defaults_to_now_for_a_finished_deployment() -> None:
    """Without finished_at, a one-call deployment finished when it was recorded."""
    service, _ = _service()
    before = datetime.now(UTC)
    result = await service.record("deployment", "api", {"version": "v1"}, CI)
    record = await service.get("deployment", "api", result.answer.body["id"], CI)
    assert record.finished_at is not None
    assert before <= record.finished_at <= datetime.now(UTC)
    assert record.finished_at == record.created_at


async def test_an_unfinished_deployment_has_no_finished_at() -> None:
    """A deployment sent with an in-progress status is not given a finished_at."""
    service, store = _service()
    result = await service.record("deployment", "api", {"version": "v1", "status": "queued"}, CI)
    record = await service.get("deployment", "api", result.answer.body["id"], CI)
    assert record.status is Status.QUEUED
    assert record.finished_at is None
    assert [e.type for e in store.event_rows] == ["deployment.started"]


async def test_a_failed_result_is_a_build_error() -> None:
    """result=failure records a terminal build-error deployment.created event."""
    service, store = _service()
    result = await service.record("deployment", "api", {"version": "v1", "result": "failure"}, CI)
    record = await service.get("deployment", "api", result.answer.body["id"], CI)
    assert (record.result, record.status) == ("failure", Status.BUILD_ERROR)
    assert [e.type for e in store.event_rows] == ["deployment.created"]
    assert store.event_rows[0].payload["id"] == record.id


async def test_unknown_fields_are_ignored_with_warnings() -> None:
    """Unknown fields do not fail the request: the answer lists them as warnings."""
    service, _ = _service()
    result = await service.record(
        "deployment", "api", {"version": "v1", "colour": "blue", "environment": "prod"}, CI
    )
    assert result.answer.body["warnings"] == [
        "unknown field 'colour' was ignored",
        "unknown field 'environment' was ignored",
    ]


async def test_no_warnings_key_without_unknown_fields() -> None:
    """A clean body is answered with the id alone."""
    service, _ = _service()
    result = await service.record("deployment", "api", {"version": "v1"}, CI)
    assert list(result.answer.body) == ["id"]


async def test_build_with_deployment_fields_warns() -> None:
    """A build sent with stage/host records the build and warns that they were ignored."""
    service, _ = _service()
    result = await service.record("build", "api", {"version": "v1", "stage": "prod"}, CI)
    assert result.answer.body["warnings"] == ["unknown field 'stage' was ignored"]
    assert result.answer.location == f"/components/api/builds/{result.answer.body['id']}"
    build = await service.get("build", "api", result.answer.body["id"], CI)
    assert build.kind == "build"


async def test_missing_version_names_the_field() -> None:
    """A body without version fails validation with details naming `version`."""
    service, store = _service()
    with pytest.raises(ValidationFailed) as caught:
        await service.record("deployment", "api", {"stage": "prod"}, CI)
    assert [d["field"] for d in caught.value.details] == ["version"]
    assert store.records == {}


@pytest.mark.parametrize("slug", ["Bad Slug!", "MyApp", "-x", "a" * 101, "api\n"])
async def test_bad_slug_is_a_validation_error_on_component(slug: str) -> None:
    """An invalid component slug fails with details naming `component`."""
    service, _ = _service()
    with pytest.raises(ValidationFailed) as caught:
        await service.record("deployment", slug, {"version": "v1"}, CI)
    assert [d["field"] for d in caught.value.details] == ["component"]
    with pytest.raises(ValidationFailed):
        check_slug(slug)


async def test_scopes_and_component_globs_are_enforced() -> None:
    """Writing needs events:write, reading events:read, both on a matching component."""
    service, store = _service()
    reader = Principal("reader", frozenset({"events:read"}), ("*",))
    writer = Principal("writer", frozenset({"events:write"}), ("*",))
    web_only = Principal("web", frozenset({"events:write", "events:read"}), ("web-*",))
    with pytest.raises(Forbidden):
        await service.record("deployment", "api", {"version": "v1"}, reader)
    with pytest.raises(Forbidden):
        await service.record("deployment", "api", {"version": "v1"}, web_only)
    assert store.records == {}
    result = await service.record("deployment", "api", {"version": "v1"}, writer)
    with pytest.raises(Forbidden):
        await service.get("deployment", "api", result.answer.body["id"], writer)
    with pytest.raises(Forbidden):
        await service.page(ListQuery(kind="deployment", component="api"), web_only)


async def test_strict_components_refuses_new_components() -> None:
    """With strict_components, an unknown component is NotFound; a known one is accepted."""
    service, store = _service(strict_components=True)
    with pytest.raises(NotFound, match="strict_components"):
        await service.record("deployment", "api", {"version": "v1"}, CI)
    store.components["api"] = datetime.now(UTC)
    result = await service.record("deployment", "api", {"version": "v1"}, CI)
    assert result.answer.status == 201


async def test_get_unknown_record_is_not_found() -> None:
    """Reading an id that does not exist raises NotFound."""
    service, _ = _service()
    with pytest.raises(NotFound):
        await service.get("deployment", "api", str(uuid.uuid4()), CI)


async def test_idempotent_repeat_and_conflict() -> None:
    """Same key and body replay the first answer; same key with another body conflicts."""
    service, store = _service()
    first = await service.record("deployment", "api", {"version": "v1"}, CI, "key-1")
    again = await service.record("deployment", "api", {"version": "v1"}, CI, "key-1")
    assert again.replayed and again.answer == first.answer
    assert len(store.records) == 1
    with pytest.raises(IdempotencyConflict):
        await service.record("deployment", "api", {"version": "v2"}, CI, "key-1")
    with pytest.raises(IdempotencyConflict):
        await service.record("deployment", "web", {"version": "v1"}, CI, "key-1")
    assert len(store.records) == 1


def test_fingerprint_ignores_key_order() -> None:
    """Two bodies with the same fields in another order are the same request."""
    a = fingerprint("deployment", "api", {"version": "v1", "meta_data": {"a": 1, "b": 2}})
    b = fingerprint("deployment", "api", {"meta_data": {"b": 2, "a": 1}, "version": "v1"})
    assert a == b
    assert a != fingerprint("build", "api", {"version": "v1", "meta_data": {"a": 1, "b": 2}})


async def test_planned_deliveries_show_on_the_record() -> None:
    """Each forwarder the planner picks appears as a pending delivery of the record."""

    def planner(event: NewEvent, record: Deployment) -> list[NewDelivery]:
        return [
            NewDelivery(id=str(uuid.uuid4()), forwarder=name, next_attempt_at=record.created_at)
            for name in ("grafana", "webhook")
        ]

    service, _ = _service(planner=planner)
    result = await service.record("deployment", "api", {"version": "v1"}, CI)
    record = await service.get("deployment", "api", result.answer.body["id"], CI)
    assert record.deliveries is not None
    assert [(d.forwarder, d.status) for d in record.deliveries] == [
        ("grafana", "pending"),
        ("webhook", "pending"),
    ]


async def test_components_are_filtered_by_token_globs() -> None:
    """GET /components shows a token only the components it may access."""
    service, _ = _service()
    for slug in ("api", "web-front", "web-back"):
        await service.record("deployment", slug, {"version": "v1"}, CI)
    web_reader = Principal("web", frozenset({"events:read"}), ("web-*",))
    assert [c.slug for c in await service.components(web_reader)] == ["web-back", "web-front"]
    assert len(await service.components(CI)) == 3


def test_every_invalid_field_is_reported_at_once() -> None:
    """All invalid fields of a body are listed together, each with a message."""
    with pytest.raises(ValidationFailed) as caught:
        parse_body(DeploymentIn, {"version": 1, "started_at": "nope", "meta_data": "x"})
    details = caught.value.details
    assert {d["field"] for d in details} == {"version", "started_at", "meta_data"}
    assert all(d["message"] for d in details)


_json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
_json = st.recursive(
    _json_scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)
_field_names = st.sampled_from([*RELEASEBITS_FIELDS, "status", "other"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=st.dictionaries(_field_names, _json | st.datetimes().map(str), max_size=8))
def test_any_json_body_is_recorded_or_refused_as_a_client_error(fields: dict[str, Any]) -> None:
    """Whatever JSON object is sent, the service records it or refuses it with a 4xx."""

    async def attempt() -> None:
        service, store = _service()
        try:
            result = await service.record("deployment", "api", fields, CI)
        except RelayError as exc:
            assert 400 <= exc.status < 500
            assert store.records == {}
        else:
            record = await service.get("deployment", "api", result.answer.body["id"], CI)
            record.model_dump_json()  # what the API will answer must serialise

    asyncio.run(attempt())


async def test_timestamps_with_offsets_are_stored_in_utc() -> None:
    """started_at sent with +02:00 is stored as the same instant in UTC."""
    service, _ = _service()
    result = await service.record(
        "deployment",
        "api",
        {"version": "v1", "started_at": "2018-05-27T15:15:30.311+02:00"},
        CI,
    )
    record = await service.get("deployment", "api", result.answer.body["id"], CI)
    assert record.started_at == datetime(2018, 5, 27, 13, 15, 30, 311000, tzinfo=UTC)
    assert record.started_at is not None and record.started_at.utcoffset() == timedelta(0)
