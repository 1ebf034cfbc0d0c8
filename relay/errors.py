"""The one exception root of relay and the errors the API turns into answers."""

from __future__ import annotations

from typing import Any


class RelayError(Exception):
    """Root of every error relay raises on purpose.

    `status` and `code` say how the HTTP layer answers it; `details` is a list of
    `{"field": ..., "message": ...}` items for validation errors.
    """

    status = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.extra = extra or {}

    def to_json(self) -> dict[str, Any]:
        """The error body every non-2xx answer carries."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        body.update(self.extra)
        return {"error": body}


class MalformedBody(RelayError):
    status = 400
    code = "malformed_body"


class Unauthenticated(RelayError):
    status = 401
    code = "unauthenticated"


class Forbidden(RelayError):
    status = 403
    code = "forbidden"


class NotFound(RelayError):
    status = 404
    code = "not_found"


class MethodNotAllowed(RelayError):
    status = 405
    code = "method_not_allowed"


class RequestTimeout(RelayError):
    """The client took longer than `server.body_timeout` to send its body."""

    status = 408
    code = "request_timeout"


class Conflict(RelayError):
    status = 409
    code = "conflict"


class IdempotencyConflict(Conflict):
    code = "idempotency_key_reused"


class BodyTooLarge(RelayError):
    status = 413
    code = "body_too_large"


class UnsupportedMediaType(RelayError):
    status = 415
    code = "unsupported_media_type"


class UnsupportedContentEncoding(UnsupportedMediaType):
    code = "unsupported_content_encoding"


class ValidationFailed(RelayError):
    status = 422
    code = "validation_error"


class TooManyRequests(RelayError):
    """Over an abuse limit; `extra["retry_after"]` (seconds) becomes `Retry-After`."""

    status = 429
    code = "rate_limited"


class TooManyConnections(TooManyRequests):
    code = "too_many_connections"


class StoreError(RelayError):
    """A storage failure; the store boundary translates driver errors into it."""

    status = 503
    code = "store_unavailable"


class StoreUnavailable(StoreError):
    """The database cannot be reached right now (down, restarting, network): retried."""


class SchemaError(StoreError):
    """The database schema is unknown to this relay (corrupt or newer)."""

    code = "schema_error"


class ConfigError(RelayError):
    """A configuration file that cannot be used; `details` locates each problem."""

    code = "config_error"
