"""Request and domain models (relay/models.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from relay.errors import ValidationFailed
from relay.models import (
    MAX_META_DEPTH,
    SLUG_RE,
    BuildIn,
    Deployment,
    DeploymentIn,
    Status,
    initial_status,
    trusted_deployment,
)
from relay.records.service import check_slug, parse_body
from tests.support import RELEASEBITS_FIELDS


def _error_fields(exc: ValidationError) -> set[str]:
    return {".".join(str(p) for p in err["loc"]) for err in exc.errors()}


def test_releasebits_fields_are_accepted() -> None:
    """Every ReleaseBits field validates, timestamps become aware UTC datetimes."""
    body = DeploymentIn.model_validate(RELEASEBITS_FIELDS)
    assert body.started_at == datetime(2018, 5, 27, 13, 15, 30, 311000, tzinfo=UTC)
    assert body.code_name == "Funky Fünke"
    assert body.meta_data == {"user_id": "metauser", "foo": "bar"}


@pytest.mark.parametrize(
    ("sent", "utc"),
    [
        ("2018-05-27T15:15:30.311+02:00", "2018-05-27T13:15:30.311000+00:00"),
        ("2018-05-27T09:15:30.311-04:00", "2018-05-27T13:15:30.311000+00:00"),
        ("2018-05-27T13:15:30.311", "2018-05-27T13:15:30.311000+00:00"),
        ("2018-05-27T13:15:30Z", "2018-05-27T13:15:30+00:00"),
    ],
)
def test_timestamps_are_normalised_to_utc(sent: str, utc: str) -> None:
    """Offsets are converted to UTC; a timestamp without offset is taken as UTC."""
    body = DeploymentIn.model_validate({"version": "v1", "started_at": sent})
    assert body.started_at is not None
    assert body.started_at.isoformat() == utc


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({}, "version"),
        ({"version": ""}, "version"),
        ({"version": "   "}, "version"),
        ({"version": "v" * 201}, "version"),
        ({"version": 123}, "version"),
        ({"version": None}, "version"),
        ({"version": "v1", "meta_data": "x"}, "meta_data"),
        ({"version": "v1", "meta_data": [1, 2]}, "meta_data"),
        ({"version": "v1", "started_at": "yesterday"}, "started_at"),
        ({"version": "v1", "stage": "s" * 201}, "stage"),
        ({"version": "v1", "host": "h" * 256}, "host"),
        ({"version": "v1", "status": "exploded"}, "status"),
        ({"version": "v1", "result": {"ok": True}}, "result"),
    ],
)
def test_invalid_fields_are_named(fields: dict[str, Any], bad_field: str) -> None:
    """Each invalid value is reported against its own field."""
    with pytest.raises(ValidationError) as caught:
        DeploymentIn.model_validate(fields)
    assert _error_fields(caught.value) == {bad_field}


def test_text_is_stripped() -> None:
    """Surrounding whitespace of text fields is dropped."""
    assert DeploymentIn.model_validate({"version": "  v1 \n"}).version == "v1"


def test_version_of_200_characters_is_fine() -> None:
    """The longest allowed version (200 characters) is accepted."""
    assert len(DeploymentIn.model_validate({"version": "v" * 200}).version) == 200


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_meta_data_nesting_is_bounded() -> None:
    """meta_data may nest up to MAX_META_DEPTH levels; deeper is a validation error."""
    ok = DeploymentIn.model_validate({"version": "v1", "meta_data": _nested(MAX_META_DEPTH)})
    assert ok.meta_data is not None
    with pytest.raises(ValidationError) as caught:
        DeploymentIn.model_validate({"version": "v1", "meta_data": _nested(MAX_META_DEPTH + 1)})
    assert _error_fields(caught.value) == {"meta_data"}


def test_meta_data_lists_count_as_levels() -> None:
    """Lists inside meta_data count towards the nesting limit too."""
    deep: Any = 1
    for _ in range(MAX_META_DEPTH):
        deep = [deep]
    with pytest.raises(ValidationError):
        DeploymentIn.model_validate({"version": "v1", "meta_data": {"l": deep}})


def test_builds_have_no_stage_or_host() -> None:
    """A build ignores deployment-only fields such as stage and host."""
    build = BuildIn.model_validate({"version": "v1", "stage": "prod", "host": "h"})
    assert "stage" not in build.model_dump() and "host" not in build.model_dump()


def test_deployment_serialises_timestamps_as_utc_z_milliseconds() -> None:
    """The API answers timestamps as ISO-8601 UTC with milliseconds and a Z."""
    when = datetime(2018, 5, 27, 13, 15, 30, 311999, tzinfo=UTC)
    record = Deployment(
        id="1",
        component="api",
        version="v1",
        status=Status.SUCCESS,
        started_at=when,
        created_at=when,
        updated_at=when,
    )
    data = json.loads(record.model_dump_json())
    assert data["started_at"] == "2018-05-27T13:15:30.311Z"
    assert data["finished_at"] is None
    assert data["meta_data"] == {}


@pytest.mark.parametrize(
    ("result", "status", "expected"),
    [
        (None, None, Status.SUCCESS),
        ("success", None, Status.SUCCESS),
        ("SUCCESS", None, Status.SUCCESS),
        ("failure", None, Status.BUILD_ERROR),
        ("whatever", None, Status.BUILD_ERROR),
        ("crashed-error", None, Status.CRASHED_ERROR),
        ("aborted", None, Status.ABORTED),
        ("failure", Status.QUEUED, Status.QUEUED),
    ],
)
def test_initial_status(result: str | None, status: Status | None, expected: Status) -> None:
    """A one-call deployment's status follows its result unless a status is given."""
    assert initial_status(result, status) is expected


def test_terminal_statuses() -> None:
    """success and the error states are terminal; the in-progress states are not."""
    assert {s for s in Status if s.terminal} == {
        Status.SUCCESS,
        Status.BUILD_ERROR,
        Status.CRASHED_ERROR,
        Status.TIMEOUT_ERROR,
        Status.ABORTED,
    }


@pytest.mark.parametrize(
    ("slug", "valid"),
    [
        ("component-slug", True),
        ("a", True),
        ("web.frontend_2", True),
        ("0day", True),
        ("a" * 100, True),
        ("a" * 101, False),
        ("Bad Slug!", False),
        ("MyApp", False),
        ("-leading-dash", False),
        (".hidden", False),
        ("", False),
        ("ünïcode", False),
        ("api\n", False),
    ],
)
def test_slug_rule(slug: str, valid: bool) -> None:
    """Slugs are 1-100 of [a-z0-9._-], starting with a letter or digit."""
    assert bool(SLUG_RE.match(slug)) is valid


# Hostile input: timestamps, slugs and meta_data either validate or raise the API's
# ValidationFailed (a 422), never another exception.

_ANY_VALUE = (
    st.text(max_size=40)
    | st.integers()
    | st.floats()
    | st.none()
    | st.booleans()
    | st.from_regex(r"\A[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2}([T ][0-9:.]{0,15})?(Z|[+-][0-9:]{0,6})?\Z")
)


@settings(max_examples=400, deadline=None)
@given(started=_ANY_VALUE, finished=_ANY_VALUE)
def test_any_timestamp_validates_or_is_a_validation_error(
    started: object, finished: object
) -> None:
    """Timestamps of any shape give an aware UTC datetime or ValidationFailed."""
    fields = {"version": "v1", "started_at": started, "finished_at": finished}
    try:
        parsed, _ = parse_body(DeploymentIn, fields)
    except ValidationFailed:
        return
    for value in (parsed.started_at, parsed.finished_at):
        assert value is None or value.utcoffset() is not None
    parsed.model_dump_json()


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=120) | st.from_regex(r"\A[a-z0-9._-]{0,110}\Z"))
def test_any_slug_is_accepted_or_refused_cleanly(component: str) -> None:
    """A component name is a valid slug or raises ValidationFailed."""
    try:
        check_slug(component)
    except ValidationFailed:
        return
    assert 1 <= len(component) <= 100 and component == component.strip().lower()


def test_meta_data_with_too_many_keys_is_refused() -> None:
    """More than 1,000 keys in meta_data, counted across all levels, is a 422."""
    flat = {f"k{i}": i for i in range(1001)}
    nested = {"a": {f"k{i}": i for i in range(600)}, "b": {f"k{i}": i for i in range(600)}}
    for meta in (flat, nested):
        with pytest.raises(ValidationFailed, match="not valid"):
            parse_body(DeploymentIn, {"version": "v1", "meta_data": meta})
    parse_body(DeploymentIn, {"version": "v1", "meta_data": {f"k{i}": i for i in range(999)}})


def test_trusted_deployment_equals_a_validated_one() -> None:
    """The unvalidated fast constructor gives the same record and the same JSON, key order
    included, as pydantic's validation."""
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    values: dict[str, Any] = {
        "id": "d1",
        "component": "api",
        "version": "v1",
        "status": Status.SUCCESS,
        "stage": "production",
        "created_at": now,
        "updated_at": now,
    }
    fast, checked = trusted_deployment(**values), Deployment(**values)
    assert fast == checked
    assert list(fast.model_dump(mode="json").items()) == list(
        checked.model_dump(mode="json").items()
    )
    assert trusted_deployment(**values).meta_data is not fast.meta_data  # no shared default
