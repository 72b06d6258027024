"""The one way events enter the log: ``append``.

REST, gRPC, the admin, management commands and tests all call ``append``; nothing else writes event
rows. It validates the batch, derives streams, and runs the SQL function ``flunq_append`` (see
``events/sql/log.sql``; outside a transaction ``flunq_append_one`` for a single event,
``flunq_append_new`` for a batch) in a single statement, which holds the log's invariants:

- stream versions dense from 0, checked against ``expected_version`` under a per-stream lock;
- idempotency on (source, id): a retry gets the stored original, a different event under a used
  id is a conflict;
- the batch is atomic;
- positions are drawn together with the transaction id, so global readers can compute a safe
  horizon (``events.horizon``).

Outside a transaction the statement is its own transaction: one round trip per append, sent
without looking for stored (source, id) first; a retry is refused by the unique index and sent
again with the look-up (docs/log.md). Inside ``transaction.atomic()`` it must be the
transaction's first write, and it looks first.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, IntegrityError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from events.cloudevents import NewEvent, check_stream_name, derive_stream, format_time
from events.notify import notifier
from flunq_events import db, metrics, pgarrays
from flunq_events.errors import (
    Conflict,
    DuplicateEventConflict,
    InvalidEvent,
    InvalidRequest,
    StreamDeleted,
    TenantForbidden,
    WrongExpectedVersion,
)
from flunq_events.jsonutil import JSONError, check_value
from flunq_events.numbers import is_digits

ANY = "any"
NO_STREAM = "no_stream"
STREAM_EXISTS = "stream_exists"

# Hooks run on every batch before it is written (the schema registry validates data here).
# Each takes (events, streams) and raises a ServiceError to refuse the batch.
before_append: list[Callable[[Sequence[NewEvent], list[str]], None]] = []


# Not frozen: a frozen dataclass's __init__ sets each field through object.__setattr__, ~1 us against
# ~0.26 us, once per event appended.
@dataclass(slots=True)
class Appended:
    """Where one event of an append landed."""

    event: NewEvent
    stream: str
    version: int
    position: int
    recordedtime: datetime
    duplicate: bool

    def as_cloudevent(self) -> dict:
        return {
            **self.event.attributes(),
            "stream": self.stream,
            "version": self.version,
            "position": self.position,
            "recordedtime": format_time(self.recordedtime),
        }


@dataclass(frozen=True, slots=True)
class AppendResult:
    events: list[Appended]

    @property
    def duplicate(self) -> bool:
        """True when every event was already stored (an idempotent retry)."""
        return all(item.duplicate for item in self.events)

    @property
    def last_position(self) -> int:
        return max(item.position for item in self.events)


def parse_expected_version(value: str | int | None) -> str:
    """``any`` | ``no_stream`` | ``stream_exists`` | an integer >= 0, as the database function wants."""
    if value is None or value == "":
        return ANY
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip().lower()
    else:
        raise InvalidRequest("expected_version must be a string or an integer", field="expected_version")
    if text in (ANY, NO_STREAM, STREAM_EXISTS):
        return text
    if is_digits(text, 19) and int(text) <= 2**63 - 1:
        return str(int(text))
    raise InvalidRequest(
        f"expected_version must be any, no_stream, stream_exists or an integer >= 0, got {value!r}",
        field="expected_version",
    )


@metrics.observe_append
def append(
    events: Sequence[NewEvent],
    *,
    stream: str | None = None,
    expected_version: str = ANY,
    tenant: str | None = None,
) -> AppendResult:
    """Append ``events`` atomically, to ``stream`` or each to its derived stream.

    ``tenant`` is the tenant of a tenant-bound caller: events without ``tenantid`` get it, events
    naming another tenant and streams of another tenant are refused (403).
    """
    if not events:
        raise InvalidRequest("no events to append")
    if len(events) > settings.MAX_BATCH_EVENTS:
        raise InvalidRequest(
            f"a batch holds at most {settings.MAX_BATCH_EVENTS} events, got {len(events)}",
            limit=settings.MAX_BATCH_EVENTS,
        )
    if len(events) > 1:
        _refuse_repeated_ids(events)
    if stream is not None:
        check_stream_name(stream)
        streams = [stream] * len(events)
    else:
        streams = _derive_streams(events)
    if expected_version != ANY and len(set(streams)) > 1:
        raise InvalidRequest(
            "expected_version needs all events of the batch in one stream; "
            f"this batch spans {len(set(streams))} streams",
            field="expected_version",
        )
    if tenant is not None:
        _stamp_tenant(events, tenant)
    for hook in before_append:
        hook(events, streams)
    wrapper = connections[DEFAULT_DB_ALIAS]  # once: each access through ``connection`` costs ~4 us
    rows = _execute(events, streams, expected_version, tenant, wrapper)
    if not all(row[4] for row in rows):  # something new committed (or will, with the transaction)
        if wrapper.in_atomic_block:
            wrapper.on_commit(notifier.poke)
        else:
            notifier.poke()
    return AppendResult(
        events=[
            Appended(event, name, version, position, recorded, duplicate)
            for event, (position, name, version, recorded, duplicate) in zip(events, rows, strict=True)
        ]
    )


def _derive_streams(events: Sequence[NewEvent]) -> list[str]:
    """Each event's stream (``derive_stream``). A batch's events mostly share theirs: it is derived,
    and its name checked, once per execution, workflow and type."""
    derived: dict[tuple[str | None, str | None, str], str] = {}
    streams = []
    for event in events:
        key = (event.executionid, event.workflowid, event.type)
        stream = derived.get(key)
        if stream is None:
            stream = derived[key] = derive_stream(event)
        streams.append(stream)
    return streams


def _refuse_repeated_ids(events: Sequence[NewEvent]) -> None:
    seen: set[tuple[str, str]] = set()
    for index, event in enumerate(events):
        key = (event.source, event.id)
        if key in seen:
            raise InvalidRequest(
                f"/{index}: source {event.source!r} and id {event.id!r} appear twice in the batch",
                attribute=f"/{index}/id",
            )
        seen.add(key)


def _stamp_tenant(events: Sequence[NewEvent], tenant: str) -> None:
    for index, event in enumerate(events):
        if event.tenantid is None:
            event.tenantid = tenant
        elif event.tenantid != tenant:
            where = f"/{index}/tenantid" if len(events) > 1 else "/tenantid"
            raise TenantForbidden(
                f"{where}: this token writes events of tenant {tenant!r} only, got {event.tenantid!r}",
                attribute=where,
                expected=tenant,
                actual=event.tenantid,
            )


_APPEND_BATCH = "SELECT * FROM flunq_append(%s::json, %s, %s)"
# A single event goes as a row: each attribute of ``flunq_new_event`` (events/sql/log.sql) its own
# text parameter, cast by PostgreSQL, so it parses no JSON but ``data`` (docs/benchmarks.md, finding 19).
EVENT_FIELDS = (
    "stream", "id", "source", "specversion", "type", "subject", "time", "datacontenttype",
    "dataschema", "data", "data_base64", "tenantid", "workflowid", "executionid", "taskid",
    "correlationid", "causationid", "extensions",
)  # fmt: skip
_CASTS = {"time": "::timestamptz", "data": "::json", "extensions": "::jsonb"}
_DATA_FIELD = EVENT_FIELDS.index("data")
_JSON_FIELDS = (_DATA_FIELD, EVENT_FIELDS.index("extensions"))
APPEND_ONE_SQL = (
    "SELECT * FROM flunq_append_one(ROW("
    + ", ".join(f"${n}{_CASTS.get(name, '::text')}" for n, name in enumerate(EVENT_FIELDS, 1))
    # the type's last attribute, `hash`, is of releases before migration 0018
    + f", NULL)::flunq_new_event, ${len(EVENT_FIELDS) + 1}, ${len(EVENT_FIELDS) + 2})"
)
_APPEND_ONE = db.Statement("flunq_append_one", APPEND_ONE_SQL)
# A batch outside a transaction: each attribute of its events as one array, in binary (finding 21).
_ARRAY_ATTRIBUTES = (
    "id", "source", "specversion", "type", "subject", "time", "datacontenttype", "dataschema",
    "data", "data_base64", "tenantid", "workflowid", "executionid", "taskid", "correlationid",
    "causationid", "extensions",
)  # fmt: skip
_ARRAY_TYPES = {"data": "json[]"}
_GETTERS = {name: operator.attrgetter(name) for name in _ARRAY_ATTRIBUTES}
APPEND_NEW = db.Statement(
    "flunq_append_new",
    "SELECT * FROM flunq_append_new($1::json, $2, $3, $4::integer[], $5::integer[], "
    + ", ".join(f"${n}::{_ARRAY_TYPES.get(name, 'text[]')}" for n, name in enumerate(_ARRAY_ATTRIBUTES, 6))
    + ")",
    param_formats=[0, 0, 0] + [1] * (2 + len(_ARRAY_ATTRIBUTES)),
)
_SOURCE_ID_TAKEN = "flunq_events_source_id"
# A batch that inserts ids a concurrent writer inserts in the other order: one of the two is
# stopped. Sent again, the look-up finds the other's events once they commit.
_DEADLOCK = "40P01"
# Refusals of the first attempt that the look-up answers: a retry meeting a check idempotency comes
# before (wrong expected version, deleted stream, other tenant's stream), or that deadlock.
_ANSWERED_WITH_THE_LOOK_UP = {"FQ002", "FQ004", "FQ007", _DEADLOCK}


def _execute(
    events: Sequence[NewEvent],
    streams: list[str],
    expected_version: str,
    tenant: str | None,
    wrapper: BaseDatabaseWrapper,
) -> list[tuple]:
    """The rows of the append (position, stream, version, recorded time, duplicate), on ``wrapper``,
    Django's connection of this thread."""
    in_transaction = wrapper.in_atomic_block
    if not in_transaction:
        # The common case: new events. It does not look for a stored (source, id) first: a retry
        # fails on the unique index or on a check that idempotency comes before (expected version,
        # deleted stream, tenant), and the look-up below answers it: the stored originals, or the
        # same refusal.
        try:
            if len(events) == 1:
                params = event_params(events[0].row(streams[0]))
                _refuse_nul_in_data(events, params[_DATA_FIELD])
                return _APPEND_ONE.rows([*params, expected_version, tenant], wrapper)
            return _append_new(events, streams, expected_version, tenant, wrapper)
        except IntegrityError as exc:
            if _constraint(exc) != _SOURCE_ID_TAKEN:
                raise Conflict("the event conflicts with one appended concurrently") from exc
        except DatabaseError as exc:
            if _sqlstate(exc) not in _ANSWERED_WITH_THE_LOOK_UP:
                raise _translate(exc) from exc
    # With the look-up. A concurrent append of the same (source, id) to another stream is caught
    # by the unique index; the retry then finds the committed original and answers idempotently
    # (or 409). A batch stopped by a deadlock can meet the other writer's rows again before they
    # commit (a second deadlock, then the unique index once they do): a third look-up sees them.
    rows = [event.row(name) for event, name in zip(events, streams, strict=True)]
    params = (orjson.dumps(rows).decode(), expected_version, tenant)
    _refuse_nul_in_data(events, params[0])
    attempts = 1 if in_transaction else 3
    for attempt in range(attempts):
        try:
            return db.rows(_APPEND_BATCH, params)
        except IntegrityError as exc:
            if attempt + 1 < attempts and _sqlstate(exc) == "23505":
                continue
            raise Conflict("the event conflicts with one appended concurrently") from exc
        except DatabaseError as exc:
            if attempt + 1 < attempts and _sqlstate(exc) == _DEADLOCK:
                continue
            raise _translate(exc) from exc
    raise AssertionError("unreachable")


def _append_new(
    events: Sequence[NewEvent],
    streams: list[str],
    expected_version: str,
    tenant: str | None,
    wrapper: BaseDatabaseWrapper,
) -> list[tuple]:
    """A batch through ``flunq_append_new``. The function returns the first position, the recorded
    time and each stream's last version before the batch; the rows of ``_execute`` are computed
    from them."""
    params, stream_numbers, ranks = new_batch_params(events, streams, expected_version, tenant)
    ((first, recorded, last_versions),) = APPEND_NEW.rows(params, wrapper)
    return [
        (first + index, name, last_versions[number - 1] + 1 + rank, recorded, False)
        for index, (name, number, rank) in enumerate(zip(streams, stream_numbers, ranks, strict=True))
    ]


def new_batch_params(
    events: Sequence[NewEvent], streams: list[str], expected_version: str, tenant: str | None
) -> tuple[list[str | bytes | None], list[int], list[int]]:
    """The parameters of ``APPEND_NEW`` for a batch, and how it numbers the events: each event's
    stream, as the 1-based index of its stream among the batch's streams in name order, and its
    rank among that stream's events."""
    numbers = {name: number for number, name in enumerate(sorted(set(streams)), 1)}
    summary = [{"name": name, "events": 0, "last": 0, "tenantid": None} for name in numbers]
    if len(summary) == 1:  # the usual batch: one stream, its events in order
        count = len(events)
        summary[0].update(events=count, last=count - 1, tenantid=events[0].tenantid)
        stream_numbers, ranks = [1] * count, list(range(count))
    else:
        stream_numbers, ranks = [], []
        for index, (event, name) in enumerate(zip(events, streams, strict=True)):
            number = numbers[name]
            stream = summary[number - 1]
            if not stream["events"]:
                stream["tenantid"] = event.tenantid  # a new stream belongs to its first event's tenant
            stream_numbers.append(number)
            ranks.append(stream["events"])
            stream["events"] += 1
            stream["last"] = index
    params = [
        orjson.dumps(summary).decode(),
        expected_version,
        tenant,
        pgarrays.int4_array(stream_numbers),
        pgarrays.int4_array(ranks),
        *(_attribute_array(events, name) for name in _ARRAY_ATTRIBUTES),
    ]
    return params, stream_numbers, ranks


def _attribute_array(events: Sequence[NewEvent], name: str) -> bytes | None:
    """One attribute of every event of the batch as a binary array; NULL when no event has it
    (``unnest`` gives NULL for it then)."""
    if name == "data":  # data_base64 first, as in ``NewEvent.attributes``
        values = [
            orjson.dumps(e.data) if e.has_data and e.data is not None and e.data_base64 is None else None
            for e in events
        ]
        oid = pgarrays.JSON
    elif name == "extensions":
        values = [orjson.dumps(e.extensions) if e.extensions else None for e in events]
        oid = pgarrays.TEXT
    else:
        strings = list(map(_GETTERS[name], events))
        return None if strings.count(None) == len(strings) else pgarrays.text_array(strings)
    if values.count(None) == len(values):
        return None
    array = pgarrays.bytes_array(values, oid)
    if oid == pgarrays.JSON:
        _refuse_nul_in_data(events, array)  # each element's JSON is whole in the array's bytes
    return array


# U+0000 as orjson writes it, in a string or a key of ``data``. The ``json`` columns take it, but
# ``jsonb``, as which idempotency compares ``data`` (``flunq_same_event``), cannot hold it. REST and
# gRPC refuse it as they parse a body; this holds callers in code to the same rule, at the cost of
# a search of what each append sends anyway (0.4 us for a batch's 19 KB; finding 22).
_NUL = "\\u0000"


def _refuse_nul_in_data(events: Sequence[NewEvent], written: str | bytes | None) -> None:
    """Raises ``InvalidEvent`` for the first event whose ``data`` holds U+0000, given what is sent
    for the events (their JSON, or a binary array of it). The escape found may be text that only
    looks like it (a backslash, escaped, then ``u0000``): the events' data say, checked as a
    request body's are."""
    if written is None:
        return
    backslash, nul = ("\\", _NUL) if isinstance(written, str) else (b"\\", _NUL.encode())
    if backslash not in written or nul not in written:  # a backslash is rare, and found by memchr
        return
    for index, event in enumerate(events):
        where = f"/{index}/data" if len(events) > 1 else "/data"
        try:
            check_value(event.data, max_depth=settings.MAX_JSON_DEPTH, where=where)
        except JSONError as exc:
            raise InvalidEvent(str(exc), attribute=where) from None


def event_params(row: dict) -> list[str | None]:
    """``row`` (``NewEvent.row``) as the text parameters of ``APPEND_ONE_SQL``'s event."""
    params = [row.get(name) for name in EVENT_FIELDS]
    for index in _JSON_FIELDS:
        if params[index] is not None:
            params[index] = orjson.dumps(params[index]).decode()
    return params


def _sqlstate(exc: BaseException) -> str | None:
    return getattr(exc.__cause__, "sqlstate", None)


def _constraint(exc: BaseException) -> str | None:
    return getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)


def _detail(exc: BaseException) -> dict:
    diag = getattr(exc.__cause__, "diag", None)
    raw = getattr(diag, "message_detail", None)
    try:
        return orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return {}


# The attributes in each index of the log (an entry is at most ~2.7 kB; attributes are checked in
# characters, up to 2048 each, and four bytes each in UTF-8 at most).
_INDEXED = {
    "flunq_events_source_id": "source and id (together)",
    "flunq_events_type": "type",
    "flunq_events_workflowid": "workflowid",
    "flunq_events_correlationid": "correlationid",
    "flunq_events_tenantid": "tenantid",
    "flunq_streams_tenant": "tenantid",
}


def _translate(exc: DatabaseError) -> Exception:
    state = _sqlstate(exc)
    detail = _detail(exc)
    if state == "FQ002":
        return WrongExpectedVersion(
            f"stream {detail['stream']!r} is at version {detail['actual_version']}, "
            f"expected {detail['expected_version']}",
            stream=detail["stream"],
            expected_version=detail["expected_version"],
            actual_version=detail["actual_version"],
        )
    if state == "FQ003":
        return DuplicateEventConflict(
            "an event with this source and id exists with different content", events=detail["events"]
        )
    if state == "FQ005":
        return DuplicateEventConflict(
            f"{detail['existing']} of the {detail['batch']} events exist already; "
            "a batch is either new or an exact retry",
            **detail,
        )
    if state == "FQ004":
        return StreamDeleted(
            f"stream {detail['stream']!r} is deleted; recreate it with POST /api/v1/streams to append",
            stream=detail["stream"],
        )
    if state == "FQ007":
        return TenantForbidden(
            f"stream {detail['stream']!r} belongs to another tenant", stream=detail["stream"]
        )
    if state == "FQ008":
        # Names nothing of the stored event: it is another tenant's.
        return DuplicateEventConflict(
            "this source and id are taken by an event this token cannot see; use a source of your own"
        )
    if state == "FQ001":
        return InvalidRequest("append must be the first write of its transaction")
    if state == _DEADLOCK:
        return Conflict(
            "the append crossed a concurrent one writing the same source and id; nothing was written, "
            "send it again"
        )
    if state == "54000":  # program_limit_exceeded: an index entry over PostgreSQL's ~2.7 kB limit
        text = str(exc.__cause__ or exc)
        index = re.search(r'for index "([a-z_]+)"', text)
        names = _INDEXED.get(index.group(1), "an attribute") if index else "an attribute"
        return InvalidEvent(
            f"{names} too long to be indexed: PostgreSQL keeps at most ~2,700 bytes (UTF-8) per index "
            "entry; shorten it"
        )
    if state and state.startswith("22"):
        # A data exception the checks above let through: the input is at fault, not the server.
        return InvalidEvent(f"the store refused a value: {str(exc.__cause__ or exc).splitlines()[0]}")
    return exc


def append_one(event: NewEvent, **options) -> Appended:
    return append([event], **options).events[0]
