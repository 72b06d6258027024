"""Reading snapshots: the latest, a list, and a stream's state (latest snapshot + later events).

Only snapshots at versions the stream still shows count: after a stream was deleted and
recreated, snapshots of its earlier life are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from events.selectors import read_stream
from flunq_events.errors import NotFound
from snapshots.models import Snapshot
from snapshots.services import check_type, existing_stream
from streams.models import Stream


def _visible(stream: Stream, type: str | None) -> QuerySet[Snapshot]:
    snapshots = Snapshot.objects.filter(stream_id=stream.name, version__gte=stream.truncate_before)
    if type is not None:
        snapshots = snapshots.filter(type=check_type(type))
    return snapshots.order_by("-version", "-created_at")


def latest_snapshot(stream: str, *, type: str | None = None) -> Snapshot | None:
    return _visible(existing_stream(stream), type).first()


def require_latest_snapshot(stream: str, *, type: str | None = None) -> Snapshot:
    snapshot = latest_snapshot(stream, type=type)
    if snapshot is None:
        label = f" of type {type!r}" if type is not None else ""
        raise NotFound(f"stream {stream!r} has no snapshot{label}", stream=stream, error_kind="no_snapshot")
    return snapshot


def list_snapshots(stream: str, *, type: str | None = None, limit: int) -> list[Snapshot]:
    """Newest version first."""
    return list(_visible(existing_stream(stream), type)[:limit])


@dataclass
class StreamState:
    stream: Stream
    snapshot: Snapshot | None
    events: list[dict[str, Any]]
    next_version: int | None


def stream_state(stream: str, *, type: str | None = None, limit: int) -> StreamState:
    """The latest snapshot and up to ``limit`` events after it (all events when there is none)."""
    row = existing_stream(stream)
    snapshot = _visible(row, type).first()
    start = snapshot.version + 1 if snapshot is not None else None
    page = read_stream(stream, from_version=start, limit=limit)
    return StreamState(
        stream=page.stream, snapshot=snapshot, events=page.events, next_version=page.next_version
    )


def snapshot_as_dict(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "stream": snapshot.stream_id,
        "version": snapshot.version,
        "type": snapshot.type or None,
        "state": snapshot.state,
        "created_at": snapshot.created_at,
    }
