"""Errors a caller can act on, shared by every API (REST, gRPC, websockets).

A ``ServiceError`` carries a stable ``code``, a human ``message`` and extra fields that name what is
wrong (the field, the expected and the actual value). REST renders it as the JSON body
``{"error": code, "message": ..., **extra}`` with ``http_status``; gRPC maps ``http_status`` to a
status code (``grpc_api/errors.py``).
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    code = "error"
    http_status = 400

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.extra}


class InvalidRequest(ServiceError):
    code = "invalid_request"


class InvalidEvent(ServiceError):
    code = "invalid_event"


class TenantForbidden(ServiceError):
    code = "forbidden_tenant"
    http_status = 403


class NotFound(ServiceError):
    code = "not_found"
    http_status = 404


class Conflict(ServiceError):
    code = "conflict"
    http_status = 409


class WrongExpectedVersion(Conflict):
    code = "wrong_expected_version"


class DuplicateEventConflict(Conflict):
    code = "duplicate_event_conflict"


class StreamDeleted(ServiceError):
    code = "stream_deleted"
    http_status = 410


class ValidationFailed(ServiceError):
    code = "schema_validation_failed"
    http_status = 422


class PayloadTooLarge(ServiceError):
    code = "payload_too_large"
    http_status = 413
