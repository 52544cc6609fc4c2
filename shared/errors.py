"""The API's error types. Each carries the status, the contract's error code and a client-safe message.

`shared.http` turns them into responses; nothing else builds error bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ApiError(Exception):
    status: int = 500
    error_code: str = "INTERNAL_ERROR"
    default_detail: str = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        field_errors: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.default_detail
        self.field_errors = dict(field_errors) if field_errors else None
        self.headers = dict(headers) if headers else {}
        self.extra = dict(extra) if extra else {}
        super().__init__(self.detail)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"detail": self.detail, "error_code": self.error_code}
        if self.field_errors is not None:
            body["field_errors"] = self.field_errors
        body.update(self.extra)
        return body


class InvalidJson(ApiError):
    status = 400
    error_code = "INVALID_JSON"
    default_detail = "Request body must be a JSON object"


class InvalidQuery(ApiError):
    status = 400
    error_code = "INVALID_QUERY"
    default_detail = "Invalid query parameter"


class Unauthenticated(ApiError):
    status = 401
    error_code = "UNAUTHENTICATED"
    default_detail = "Authentication required: a valid bearer token for this API is needed"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class Forbidden(ApiError):
    status = 403
    error_code = "FORBIDDEN"
    default_detail = "You do not have permission to perform this action"


class NotFound(ApiError):
    status = 404
    error_code = "NOT_FOUND"
    default_detail = "Resource not found"


class MethodNotAllowed(ApiError):
    status = 405
    error_code = "METHOD_NOT_ALLOWED"
    default_detail = "Method not allowed"


class DuplicateEndpoint(ApiError):
    status = 409
    error_code = "DUPLICATE_ENDPOINT"
    default_detail = "This endpoint URL is already registered"


class DuplicateServerName(ApiError):
    status = 409
    error_code = "DUPLICATE_SERVER_NAME"
    default_detail = "This MCP server name is already taken"


class InvalidStateTransition(ApiError):
    status = 409
    error_code = "INVALID_STATE_TRANSITION"
    default_detail = "Only a Pending registration can be approved or rejected"


class PreconditionFailed(ApiError):
    status = 412
    error_code = "PRECONDITION_FAILED"
    default_detail = "The registration was changed since it was read (If-Match does not match the ETag)"


class PayloadTooLarge(ApiError):
    status = 413
    error_code = "PAYLOAD_TOO_LARGE"
    default_detail = "Request body is larger than 64 KiB"


class UnsupportedMediaType(ApiError):
    status = 415
    error_code = "UNSUPPORTED_MEDIA_TYPE"
    default_detail = "Request body must be sent as application/json"


class ValidationFailed(ApiError):
    status = 422
    error_code = "VALIDATION_ERROR"
    default_detail = "Request body is invalid"


class InternalError(ApiError):
    status = 500
    error_code = "INTERNAL_ERROR"
    default_detail = "Internal server error"


class DatabaseUnavailable(ApiError):
    status = 503
    error_code = "DATABASE_UNAVAILABLE"
    default_detail = "The database is unavailable; retry shortly"
    retry_after_s = 5

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(self.retry_after_s)})
