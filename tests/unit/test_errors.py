"""The error body every non-2xx answer carries (relay/errors.py)."""

from __future__ import annotations

import pytest

from relay.errors import (
    BodyTooLarge,
    Conflict,
    Forbidden,
    IdempotencyConflict,
    MalformedBody,
    MethodNotAllowed,
    NotFound,
    RelayError,
    SchemaError,
    StoreError,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
)


def test_error_body_shape() -> None:
    """Errors answer {"error": {"code", "message", "details"?, ...extra}}."""
    exc = ValidationFailed(
        "the request body is not valid",
        details=[{"field": "version", "message": "Field required"}],
        extra={"hint": "send a version"},
    )
    assert exc.to_json() == {
        "error": {
            "code": "validation_error",
            "message": "the request body is not valid",
            "details": [{"field": "version", "message": "Field required"}],
            "hint": "send a version",
        }
    }


def test_no_details_key_without_details() -> None:
    """An error without details has only code and message."""
    assert NotFound("gone").to_json() == {"error": {"code": "not_found", "message": "gone"}}


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (MalformedBody, 400),
        (Unauthenticated, 401),
        (Forbidden, 403),
        (NotFound, 404),
        (MethodNotAllowed, 405),
        (Conflict, 409),
        (IdempotencyConflict, 409),
        (BodyTooLarge, 413),
        (UnsupportedMediaType, 415),
        (ValidationFailed, 422),
        (StoreError, 503),
        (SchemaError, 503),
    ],
)
def test_status_of_each_error(cls: type[RelayError], status: int) -> None:
    """Each error class answers with its documented HTTP status."""
    assert cls("x").status == status
