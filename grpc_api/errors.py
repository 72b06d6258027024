"""``ServiceError`` -> gRPC status: the REST error, told the gRPC way.

The code follows the error's ``http_status`` (409 wrong expected version -> ABORTED, the gRPC code
for a failed optimistic-concurrency check; a reused event id -> ALREADY_EXISTS; 400/413/415/422 ->
INVALID_ARGUMENT; 404 -> NOT_FOUND; 410 deleted stream -> FAILED_PRECONDITION; 401 ->
UNAUTHENTICATED; 403 -> PERMISSION_DENIED). Every failed call carries, besides its message:

- status details (``grpc-status-details-bin``): a ``google.rpc.ErrorInfo`` with ``reason`` = the
  REST error code (``wrong_expected_version``) and ``metadata`` = the REST body's extra fields as
  strings (``actual_version``, ``field``, ...), readable with ``grpc_status.rpc_status``;
- trailing metadata ``flunq-error``: the REST JSON error body, for clients without googleapis protos.
"""

from __future__ import annotations

import json

import grpc
import orjson
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from flunq_events.errors import ServiceError

DOMAIN = "events.flunq.io"

BY_CODE: dict[str, grpc.StatusCode] = {
    "wrong_expected_version": grpc.StatusCode.ABORTED,
    "duplicate_event_conflict": grpc.StatusCode.ALREADY_EXISTS,
    "snapshot_version_ahead": grpc.StatusCode.FAILED_PRECONDITION,
    "snapshot_version_hidden": grpc.StatusCode.FAILED_PRECONDITION,
    "payload_too_large": grpc.StatusCode.RESOURCE_EXHAUSTED,
}
BY_HTTP_STATUS: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ABORTED,
    410: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


class Unauthenticated(ServiceError):
    code = "unauthenticated"
    http_status = 401


class PermissionDenied(ServiceError):
    code = "forbidden"
    http_status = 403


def status_code(exc: ServiceError) -> grpc.StatusCode:
    return BY_CODE.get(exc.code) or BY_HTTP_STATUS.get(exc.http_status) or grpc.StatusCode.INVALID_ARGUMENT


def _text(value) -> str:
    return value if isinstance(value, str) else orjson.dumps(value, default=str).decode()


# The message, the details and flunq-error travel in the call's trailers, whose size clients cap
# (grpcio: 8 KiB, and a hard 16 KiB past which it reports RESOURCE_EXHAUSTED instead). An error
# can echo the input (a 2,000-character id; the schema errors of a whole batch), so each part is
# bounded: the message in UTF-8 bytes (sent percent-encoded, up to 3 characters a byte), the
# details and the JSON body in their encoded size, dropping the extra fields when they do not fit.
MAX_MESSAGE_BYTES = 600
MAX_DETAILS_BYTES = 1500
MAX_BODY_CHARS = 3000


def _cut(text: str, limit: int) -> str:
    data = text.encode()
    return text if len(data) <= limit else data[: limit - 3].decode(errors="ignore") + "..."


def to_status(exc: ServiceError) -> grpc.Status:
    """The rich status (code, message, ErrorInfo details, ``flunq-error`` trailer) for ``exc``."""
    code = status_code(exc)
    message = _cut(exc.message, MAX_MESSAGE_BYTES)
    metadata = {key: _text(value) for key, value in exc.extra.items()}
    if sum(len(key) + len(value.encode()) for key, value in metadata.items()) > MAX_DETAILS_BYTES:
        metadata = {"truncated": "true"}
    info = error_details_pb2.ErrorInfo(reason=exc.code, domain=DOMAIN, metadata=metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = rpc_status.to_status(
        status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=[detail])
    )
    # Metadata values must be printable ASCII: the standard library escapes the rest (orjson can't).
    body = _ascii_json({**exc.as_dict(), "message": message})
    if len(body) > MAX_BODY_CHARS:
        body = _ascii_json({"error": exc.code, "message": message, "truncated": True})
    if len(body) > MAX_BODY_CHARS:  # a message of escaped characters (12 for an emoji)
        body = _ascii_json({"error": exc.code, "message": _cut(message, 200), "truncated": True})
    return _Status(status.code, status.details, (*status.trailing_metadata, ("flunq-error", body)))


def _ascii_json(value: dict) -> str:
    return json.dumps(value, default=str, ensure_ascii=True, separators=(",", ":"))


class _Status(grpc.Status):
    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: tuple) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


async def abort(context: grpc.aio.ServicerContext, exc: ServiceError) -> None:
    """End the call with ``exc``'s status (raises, as ``context.abort`` does)."""
    await context.abort_with_status(to_status(exc))
