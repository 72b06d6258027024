"""Saving snapshots: ``save_snapshot`` is the one way they are written (REST, gRPC, tests).

Rules: the stream must exist (404) and not be deleted (410); the version must be one the stream
has (409 ``snapshot_version_ahead`` beyond its last version, 409 ``snapshot_version_hidden``
before a recreated stream's first visible version). Saving at a version that has a snapshot of
the same type replaces its state. After the save, snapshots of the stream and type beyond the
newest ``SNAPSHOT_RETENTION`` are removed, in the same transaction. Events are never touched.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from events.cloudevents import STREAM_NAME
from events.selectors import get_stream
from flunq_events.errors import Conflict, InvalidRequest, NotFound
from flunq_events.jsonutil import INT64_MAX, JSONError, check_value
from snapshots.models import Snapshot
from streams.models import Stream

MAX_TYPE_LENGTH = 200


class SnapshotVersionAhead(Conflict):
    code = "snapshot_version_ahead"


class SnapshotVersionHidden(Conflict):
    code = "snapshot_version_hidden"


class SnapshotSuperseded(Conflict):
    code = "snapshot_superseded"


def check_version(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"version must be an integer, got {type(value).__name__}", field="version")
    if not 0 <= value <= INT64_MAX:
        raise InvalidRequest(f"version must be between 0 and {INT64_MAX}, got {value}", field="version")
    return value


def check_type(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(f"type must be a string, got {type(value).__name__}", field="type")
    if len(value) > MAX_TYPE_LENGTH or "\x00" in value:
        raise InvalidRequest(f"type must be at most {MAX_TYPE_LENGTH} characters without NUL", field="type")
    return value


def existing_stream(name: str) -> Stream:
    """The stream named ``name``: 404 when there is none (or none could have the name), 410 if deleted."""
    # A name no stream can have (NUL from a %00 in the path) must be a 404 before it reaches
    # PostgreSQL, which refuses NUL in text with an error.
    if not STREAM_NAME.match(name):
        raise NotFound(f"no stream named {name[:80]!r}", stream=name[:80])
    return get_stream(name)


def save_snapshot(stream: str, *, version: Any, state: Any, type: Any = None) -> tuple[Snapshot, bool]:
    """Store ``state`` as of ``version`` of ``stream``; returns (snapshot, created)."""
    version = check_version(version)
    label = check_type(type)
    if state is None:
        raise InvalidRequest("state is required: the aggregate's state as JSON", field="state")
    try:
        check_value(state, max_depth=settings.MAX_JSON_DEPTH, where="/state")
    except JSONError as exc:
        raise InvalidRequest(str(exc), field="state") from None
    row = existing_stream(stream)
    if version > row.last_version:
        raise SnapshotVersionAhead(
            f"stream {stream!r} is at version {row.last_version}; a snapshot cannot be at {version}",
            stream=stream,
            version=version,
            last_version=row.last_version,
        )
    if version < row.truncate_before:
        raise SnapshotVersionHidden(
            f"versions of stream {stream!r} before {row.truncate_before} belong to it before it was "
            "deleted and recreated",
            stream=stream,
            version=version,
            first_version=row.truncate_before,
        )
    for attempt in range(2):
        try:
            with transaction.atomic():
                snapshot, created = Snapshot.objects.update_or_create(
                    stream_id=stream, type=label, version=version, defaults={"state": state}
                )
                if _trim(stream, label, snapshot.id):
                    # Older than every snapshot kept: stored, it would be removed at once. Said, and
                    # nothing written (the transaction rolls back), rather than a 201 for nothing.
                    raise SnapshotSuperseded(
                        f"stream {stream!r} keeps its {settings.SNAPSHOT_RETENTION} newest snapshots of this "
                        f"type, all newer than version {version}; this one would not be kept",
                        stream=stream,
                        version=version,
                    )
            return snapshot, created
        except IntegrityError:
            # Two saves of the same version raced on the unique index: the second replaces.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _trim(stream: str, label: str, saved: int) -> bool:
    """Keep the newest SNAPSHOT_RETENTION snapshots; whether ``saved`` is among those removed."""
    keep = settings.SNAPSHOT_RETENTION
    if not keep:
        return False
    old = list(
        Snapshot.objects.filter(stream_id=stream, type=label)
        .order_by("-version")
        .values_list("id", flat=True)[keep:]
    )
    Snapshot.objects.filter(id__in=old).delete()
    return saved in old
