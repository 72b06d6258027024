"""Stream lifecycle: create (with retention metadata), soft delete, recreate, purge.

Each change takes the stream's append lock (the same advisory lock ``flunq_append`` takes), so it
never interleaves with an append to that stream.

Rules:
- ``DELETE`` is a soft delete: the stream's events stay in the global log, stream reads answer 410
  and appends are refused (410 ``stream_deleted``) until the stream is recreated.
- Recreating (``POST /api/v1/streams`` with the name of a deleted stream) clears the deletion;
  versions continue after the last one, and events from before the deletion are hidden from
  stream reads (like KurrentDB's soft delete).
- Purge physically removes a deleted stream's events; it is an explicit admin operation.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from events.cloudevents import STREAM_NAME, check_stream_name
from flunq_events.errors import Conflict, InvalidRequest, NotFound, TenantForbidden
from streams.models import Stream

METADATA_FIELDS = ("max_age", "max_count", "metadata")


def _lock(name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(4242, hashtext(%s))", [name])


def _check_metadata(values: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key in ("max_age", "max_count"):
        value = values.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31
        ):
            raise InvalidRequest(f"{key} must be a positive integer below 2^31", field=key)
        clean[key] = value
    metadata = values.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise InvalidRequest("metadata must be a JSON object", field="metadata")
    clean["metadata"] = metadata
    return clean


def create_stream(name: str, *, tenant: str | None = None, **values: Any) -> tuple[Stream, bool]:
    """Create ``name`` or recreate it after a delete; returns (stream, recreated).

    ``tenant``: the tenant of a tenant-bound caller, who owns the new stream and may not touch
    another tenant's.
    """
    check_stream_name(name)
    clean = _check_metadata(values)
    with transaction.atomic():
        _lock(name)
        stream = Stream.objects.select_for_update().filter(name=name).first()
        if stream is None:
            stream = Stream.objects.create(name=name, category=name.split("-", 1)[0], tenant=tenant, **clean)
            stream.refresh_from_db()
            return stream, False
        if tenant is not None and stream.tenant != tenant:
            raise TenantForbidden(f"stream {name!r} belongs to another tenant", stream=name)
        if stream.deleted_at is None:
            raise Conflict(f"stream {name!r} exists already", stream=name)
        stream.deleted_at = None
        stream.truncate_before = stream.last_version + 1
        for key, value in clean.items():
            setattr(stream, key, value)
        stream.save()
        return stream, True


def delete_stream(name: str) -> Stream:
    if not STREAM_NAME.match(name):
        raise NotFound(f"no stream named {name[:200]!r}", stream=name[:200])
    with transaction.atomic():
        _lock(name)
        stream = Stream.objects.select_for_update().filter(name=name).first()
        if stream is None:
            raise NotFound(f"no stream named {name!r}", stream=name)
        if stream.deleted_at is None:
            stream.deleted_at = timezone.now()
            stream.save(update_fields=["deleted_at"])
        return stream


def purge_stream(name: str) -> int:
    """Physically remove a soft-deleted stream's events; returns how many were removed."""
    with transaction.atomic():
        _lock(name)
        with connection.cursor() as cursor:
            cursor.execute("SELECT flunq_purge_stream(%s)", [name])
            return cursor.fetchone()[0]


def stream_as_dict(stream: Stream) -> dict[str, Any]:
    return {
        "name": stream.name,
        "category": stream.category,
        "last_version": stream.last_version,
        "event_count": stream.event_count,
        "last_position": stream.last_position,
        "created_at": stream.created_at,
        "last_event_at": stream.last_event_at,
        "deleted": stream.deleted_at is not None,
        "deleted_at": stream.deleted_at,
        "max_age": stream.max_age,
        "max_count": stream.max_count,
        "metadata": stream.metadata,
    }
