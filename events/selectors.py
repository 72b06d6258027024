"""Reads of the log: the global log up to the safe horizon, one stream, one event.

Rows are rendered as CloudEvents with ``stream``, ``version``, ``position`` and ``recordedtime``
as extension attributes. ``data`` is read as text and handed to the JSON renderer as an
``orjson.Fragment``, so a page of events is never decoded and encoded again.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.db import connection
from django.utils import timezone

from events import horizon as horizon_
from events.cloudevents import STREAM_NAME
from flunq_events import db
from flunq_events.errors import Conflict, InvalidRequest, NotFound, StreamDeleted
from streams.models import Stream

# Two forms of the same columns. Read in binary (``db.rows``: psycopg builds timestamps in C), the
# timestamps come as they are stored. Through a text cursor of Django's they would be parsed by its
# timestamptz loader in Python (~70 us a value, most of the cost of a page), so ``COLUMNS`` selects
# them as integer microseconds since the epoch instead. ``to_cloudevent`` takes either.
_MICROS = "(extract(epoch FROM {0}) * 1000000)::bigint"
_COLUMNS = (
    '"position", stream, "version", id, source, specversion, "type", subject, {time}, '
    "datacontenttype, dataschema, data::text, data_base64, tenantid, workflowid, executionid, "
    "taskid, correlationid, causationid, extensions::text, {recordedtime}"
)
COLUMNS = _COLUMNS.format(time=_MICROS.format('"time"'), recordedtime=_MICROS.format("recordedtime"))
BINARY_COLUMNS = _COLUMNS.format(time='"time"', recordedtime="recordedtime")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _as_datetime(value: int | datetime) -> datetime:
    """A timestamp of ``COLUMNS`` (microseconds since the epoch) as a UTC datetime; one of
    ``BINARY_COLUMNS`` as it is."""
    return value if value.__class__ is datetime else _EPOCH + timedelta(microseconds=value)


def to_cloudevent(row: tuple) -> dict[str, Any]:
    """A row selected with ``COLUMNS`` or ``BINARY_COLUMNS`` as a CloudEvent (JSON-ready, with
    server extensions)."""
    # Written out attribute by attribute: every reader renders every row, and this form takes
    # half the time of a loop over the optional attributes.
    (position, stream, version, id_, source, specversion, type_, subject, time, datacontenttype,
     dataschema, data, data_base64, tenantid, workflowid, executionid, taskid, correlationid,
     causationid, extensions, recordedtime) = row  # fmt: skip
    event: dict[str, Any] = {"specversion": specversion, "id": id_, "source": source, "type": type_}
    if subject is not None:
        event["subject"] = subject
    if time is not None:
        event["time"] = _as_datetime(time)
    if datacontenttype is not None:
        event["datacontenttype"] = datacontenttype
    if dataschema is not None:
        event["dataschema"] = dataschema
    if tenantid is not None:
        event["tenantid"] = tenantid
    if workflowid is not None:
        event["workflowid"] = workflowid
    if executionid is not None:
        event["executionid"] = executionid
    if taskid is not None:
        event["taskid"] = taskid
    if correlationid is not None:
        event["correlationid"] = correlationid
    if causationid is not None:
        event["causationid"] = causationid
    if extensions != "{}":
        event.update(orjson.loads(extensions))
    event["stream"] = stream
    event["version"] = version
    event["position"] = position
    event["recordedtime"] = _as_datetime(recordedtime)
    if data_base64 is not None:
        event["data_base64"] = base64.b64encode(bytes(data_base64)).decode("ascii")
    elif data is not None:
        event["data"] = orjson.Fragment(data)
    return event


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


MAX_TYPE_PATTERNS = 100


def is_type_pattern(pattern: str) -> bool:
    """An exact type or a prefix wildcard (``task.*``, ``*``): a ``*`` only at the end."""
    return "*" not in pattern[:-1]


def check_type_patterns(types: list[str], name: str) -> list[str]:
    """``types`` as every reader takes them (REST, websockets, SSE, gRPC): exact types or prefix
    wildcards (``task.*``), at most ``MAX_TYPE_PATTERNS``; ``InvalidRequest`` naming ``name``.
    Subscriptions store theirs with the same rule (``subscriptions.inputs.types_list``)."""
    for pattern in types:
        if not is_type_pattern(pattern):
            raise InvalidRequest(
                f"{name}: a wildcard is allowed only at the end (task.*), got {pattern[:60]!r}",
                parameter=name,
            )
    if len(types) > MAX_TYPE_PATTERNS:
        raise InvalidRequest(
            f"{name}: at most {MAX_TYPE_PATTERNS} patterns, got {len(types)}", parameter=name
        )
    return types


@dataclass
class EventFilter:
    """Which events a reader wants; the same filter serves REST, websockets and subscriptions.

    ``types`` holds exact types or prefix wildcards (``task.*``); ``category`` matches the part of
    the stream name before the first ``-``; ``since``/``until`` bound ``recordedtime``.
    """

    types: list[str] = field(default_factory=list)
    source: str | None = None
    subject: str | None = None
    stream: str | None = None
    category: str | None = None
    tenantid: str | None = None
    workflowid: str | None = None
    executionid: str | None = None
    taskid: str | None = None
    correlationid: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    EQUALITY = ("source", "subject", "stream", "tenantid", "workflowid", "executionid", "taskid",
                "correlationid")  # fmt: skip

    def sql(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.types and "*" not in self.types:
            alternatives = []
            for pattern in self.types:
                if pattern.endswith(".*") or pattern.endswith("*"):
                    alternatives.append('"type" LIKE %s')
                    params.append(_like_prefix(pattern.rstrip("*")))
                else:
                    alternatives.append('"type" = %s')
                    params.append(pattern)
            clauses.append("(" + " OR ".join(alternatives) + ")")
        for name in self.EQUALITY:
            value = getattr(self, name)
            if value is not None:
                clauses.append(f"{name} = %s")
                params.append(value)
        if self.category is not None:
            clauses.append("split_part(stream, '-', 1) = %s")
            params.append(self.category)
        if self.since is not None:
            clauses.append("recordedtime >= %s")
            params.append(self.since)
        if self.until is not None:
            clauses.append("recordedtime < %s")
            params.append(self.until)
        return "".join(f" AND {clause}" for clause in clauses), params

    def matches(self, event: dict[str, Any]) -> bool:
        """The same test as ``sql()``, on a rendered CloudEvent (for live delivery)."""
        if self.types and "*" not in self.types:
            type_ = event["type"]
            if not any(
                type_.startswith(p.rstrip("*")) if p.endswith("*") else type_ == p for p in self.types
            ):
                return False
        for name in self.EQUALITY:
            value = getattr(self, name)
            if value is not None and event.get(name) != value:
                return False
        if self.category is not None and event["stream"].split("-", 1)[0] != self.category:
            return False
        recorded = event["recordedtime"]
        if self.since is not None and recorded < self.since:
            return False
        return not (self.until is not None and recorded >= self.until)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass
class Page:
    events: list[dict[str, Any]]
    next_after: int
    horizon: int


def read_all(
    after: int, limit: int, filter: EventFilter | None = None, *, horizon: int | None = None
) -> Page:
    """Events with ``after < position <= horizon`` matching ``filter``, in position order.

    ``next_after`` is the cursor for the next page: the last position returned, or the horizon
    when the page is not full (everything up to it has been seen).
    """
    where, params = (filter or EventFilter()).sql()
    if horizon is None:
        # The horizon and the page in one round trip; a row of NULLs after the horizon when the
        # page is empty. OFFSET 0 keeps the horizon computed once, not once per row.
        found = db.rows(
            "SELECT h.horizon, e.* FROM (SELECT flunq_horizon() AS horizon OFFSET 0) h LEFT JOIN LATERAL ("
            f'SELECT {BINARY_COLUMNS} FROM flunq_events WHERE "position" > %s AND "position" <= h.horizon{where} '
            'ORDER BY "position" LIMIT %s) e ON true',
            [after, *params, limit],
        )
        upper = found[0][0]
        rows = [row[1:] for row in found] if found[0][1] is not None else []
    else:
        upper = horizon
        rows = db.rows(
            f'SELECT {BINARY_COLUMNS} FROM flunq_events WHERE "position" > %s AND "position" <= %s{where} '
            'ORDER BY "position" LIMIT %s',
            [after, upper, *params, limit],
        )
    events = [to_cloudevent(row) for row in rows]
    next_after = rows[-1][0] if len(rows) == limit else max(after, upper)
    return Page(events=events, next_after=next_after, horizon=upper)


def position_at(moment: datetime) -> int:
    """The position just before the first event recorded at or after ``moment`` (replay by time)."""
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT "position" FROM flunq_events WHERE recordedtime >= %s ORDER BY recordedtime, "position" LIMIT 1',
            [moment],
        )
        row = cursor.fetchone()
    if row is None:
        return horizon_.current()
    return row[0] - 1


def get_stream(name: str, *, include_deleted: bool = False) -> Stream:
    # A name no stream can have (NUL, too long, ...) is simply not found; PostgreSQL would refuse NUL.
    stream = Stream.objects.filter(name=name).first() if STREAM_NAME.match(name) else None
    if stream is None:
        raise NotFound(f"no stream named {name!r}", stream=name)
    if stream.deleted_at is not None and not include_deleted:
        raise StreamDeleted(f"stream {name!r} was deleted at {stream.deleted_at.isoformat()}", stream=name)
    return stream


@dataclass
class StreamPage:
    stream: Stream
    events: list[dict[str, Any]]
    next_version: int | None


def read_stream(name: str, *, from_version: int | None, limit: int, backwards: bool = False) -> StreamPage:
    """One stream in version order (or reverse), honouring its soft delete and retention.

    Stream reads need no horizon: appends to one stream are serialised, so a version is visible
    only after every lower one.
    """
    stream = get_stream(name)
    lowest = stream.truncate_before
    if stream.max_count is not None:
        lowest = max(lowest, stream.last_version + 1 - stream.max_count)
    clauses = ["stream = %s", '"version" >= %s']
    params: list[Any] = [name, lowest]
    if stream.max_age is not None:
        clauses.append("recordedtime >= %s")
        params.append(timezone.now() - timedelta(seconds=stream.max_age))
    if from_version is not None:
        clauses.append('"version" <= %s' if backwards else '"version" >= %s')
        params.append(from_version)
    order = "DESC" if backwards else "ASC"
    rows = db.rows(
        f'SELECT {BINARY_COLUMNS} FROM flunq_events WHERE {" AND ".join(clauses)} ORDER BY "version" {order} LIMIT %s',
        [*params, limit],
    )
    events = [to_cloudevent(row) for row in rows]
    next_version = None
    if len(rows) == limit:
        last = rows[-1][2]
        next_version = last - 1 if backwards else last + 1
        if next_version < lowest:
            next_version = None
    return StreamPage(stream=stream, events=events, next_version=next_version)


def get_event(event_id: str, source: str | None = None, *, tenantid: str | None = None) -> dict[str, Any]:
    """One event by id; ``source`` disambiguates when several sources used the same id.

    ``tenantid`` restricts the lookup to one tenant's events (tenant-bound callers).
    """
    if "\x00" in event_id or (source is not None and "\x00" in source):
        raise NotFound(f"no event with id {event_id!r}")  # no id can hold NUL (the store refuses it)
    sql = f"SELECT {BINARY_COLUMNS} FROM flunq_events WHERE id = %s"
    params: list[Any] = [event_id]
    if tenantid is not None:
        sql += " AND tenantid = %s"
        params.append(tenantid)
    if source is not None:
        sql += " AND source = %s"
        params.append(source)
    rows = db.rows(sql + ' ORDER BY "position" LIMIT 10', params)
    if not rows:
        raise NotFound(f"no event with id {event_id!r}" + (f" from source {source!r}" if source else ""))
    if len(rows) > 1:
        raise Conflict(
            f"{len(rows)} sources used the id {event_id!r}; add ?source= to choose one",
            sources=[row[4] for row in rows],
        ) from None
    return to_cloudevent(rows[0])
