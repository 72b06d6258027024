"""Idempotency on (source, id): a retry of the same event gets the stored original, another event
under a used (source, id) is a conflict. "The same" compares the stored event's attributes with
the new one's (``flunq_same_event`` in events/sql/log.sql), on every path a retry can take."""

from __future__ import annotations

import base64
import itertools

import pytest
from django.db import transaction

from events import services
from events.cloudevents import from_structured
from events.models import Event
from flunq_events.errors import DuplicateEventConflict, InvalidEvent
from tests.events.helpers import cloudevent

pytestmark = pytest.mark.django_db(transaction=True)

_streams = itertools.count(1)

ORIGINAL = {
    "subject": "order-1",
    "time": "2026-01-31T12:00:00.5Z",
    "datacontenttype": "application/json",
    "dataschema": "https://example.com/schemas/order",
    "data": {"items": [1, 2.5, "x"], "note": {"by": "ann", "at": None}},
    "tenantid": "acme",
    "workflowid": "w-1",
    "executionid": "e-1",
    "taskid": "t-1",
    "correlationid": "c-1",
    "causationid": "k-1",
    "region": "eu",
    "attempt": 1,
}

# The original with one thing changed: another event under the same (source, id).
CHANGED = {
    "type": {"type": "task.failed"},
    "subject": {"subject": "order-2"},
    "no subject": {"subject": None},
    "time": {"time": "2026-01-31T12:00:00.500001Z"},
    "no time": {"time": None},
    "datacontenttype": {"datacontenttype": "application/vnd.order+json"},
    "dataschema": {"dataschema": "https://example.com/schemas/order-v2"},
    "data": {"data": {"items": [1, 2.5, "y"], "note": {"by": "ann", "at": None}}},
    "data nested null dropped": {"data": {"items": [1, 2.5, "x"], "note": {"by": "ann"}}},
    "data as a string": {"data": '{"items": [1, 2.5, "x"]}'},
    "no data": {"data": None},
    "tenantid": {"tenantid": "other"},
    "workflowid": {"workflowid": "w-2"},
    "executionid": {"executionid": "e-2"},
    "taskid": {"taskid": "t-2"},
    "correlationid": {"correlationid": "c-2"},
    "causationid": {"causationid": "k-2"},
    "extension value": {"attempt": 2},
    "extension as a string": {"attempt": "1"},
    "extension as a boolean": {"attempt": True},
    "extension added": {"retry": "yes"},
    "extension dropped": {"region": None},
}

# The original written otherwise: the same event.
SAME = {
    "as sent": {},
    "keys and numbers written otherwise": {
        "data": {"note": {"at": None, "by": "ann"}, "items": [1.0, 2.50, "x"]}
    },
    "the same instant in another offset": {"time": "2026-01-31T13:00:00.5+01:00"},
}


def _event(event_id: str, changes: dict) -> dict:
    attributes = {**ORIGINAL, **changes}
    return cloudevent(id=event_id, **{name: value for name, value in attributes.items() if value is not None})


@pytest.fixture(params=["single event", "batch", "batch in a transaction"])
def append_way(request):
    """An append of ``event`` by each path a retry can take: the single-event function and the
    batch function outside a transaction (each refused by the unique index, then answered by the
    look-up), and the look-up first, inside a transaction."""

    def append(event: dict, stream: str) -> services.Appended:
        events = [from_structured(event)]
        if request.param == "single event":
            return services.append(events, stream=stream).events[0]
        events.append(from_structured(cloudevent(id=event["id"] + "-second")))
        if request.param == "batch in a transaction":
            with transaction.atomic():
                return services.append(events, stream=stream).events[0]
        return services.append(events, stream=stream).events[0]

    return append


@pytest.mark.parametrize("changes", CHANGED.values(), ids=CHANGED.keys())
def test_another_event_under_a_used_id_is_a_conflict(append_way, changes):
    stream = f"idem-{next(_streams)}"
    event_id = f"{stream}-event"
    append_way(_event(event_id, {}), stream)
    with pytest.raises(DuplicateEventConflict) as error:
        append_way(_event(event_id, changes), stream)
    assert error.value.extra["events"] == [{"source": "/tests", "id": event_id, "stream": stream}]


@pytest.mark.parametrize("changes", SAME.values(), ids=SAME.keys())
def test_the_same_event_again_gets_the_original(append_way, changes):
    stream = f"idem-{next(_streams)}"
    event_id = f"{stream}-event"
    first = append_way(_event(event_id, {}), stream)
    again = append_way(_event(event_id, changes), stream)
    assert again.duplicate and (again.position, again.version) == (first.position, first.version)


def test_the_same_event_in_another_stream_is_a_conflict(append_way):
    stream = f"idem-{next(_streams)}"
    event_id = f"{stream}-event"
    append_way(_event(event_id, {}), stream)
    with pytest.raises(DuplicateEventConflict):
        append_way(_event(event_id, {}), stream + "-other")


def test_base64_data_is_the_same_when_its_bytes_are(append_way):
    """``QR==`` and ``QQ==`` both decode to ``A`` (the first leaves bits set that decoding drops);
    the log keeps the bytes, and reads give them back as ``QQ==``."""
    stream = f"idem-{next(_streams)}"
    event_id = f"{stream}-event"
    first = append_way(cloudevent(id=event_id, data_base64="QQ=="), stream)
    assert base64.b64decode("QR==") == b"A"
    again = append_way(cloudevent(id=event_id, data_base64="QR=="), stream)
    assert again.duplicate and again.position == first.position
    with pytest.raises(DuplicateEventConflict):
        append_way(cloudevent(id=event_id, data_base64="Qg=="), stream)


def test_data_holding_u0000_is_refused_on_every_path(append_way):
    """REST and gRPC refuse U+0000 as they parse; a caller in code gets the same answer, on every
    path, before anything is stored (``jsonb``, as which a retry's data is compared, cannot hold
    it). The six characters ``\\u0000`` are text like any other."""
    stream = f"idem-{next(_streams)}"
    for data in ({"note": "a\x00b"}, {"a\x00": 1}, ["ok", {"deep": ["\x00"]}]):
        with pytest.raises(InvalidEvent, match=r"data(/\S*)? contains \\u0000"):
            append_way(cloudevent(id=f"{stream}-nul", data=data), stream)
    assert not Event.objects.filter(stream=stream).exists()
    text = cloudevent(id=f"{stream}-text", data={"note": "\\u0000"})
    first = append_way(text, stream)
    again = append_way(text, stream)
    assert again.duplicate and again.position == first.position
    assert Event.objects.get(event_id=text["id"]).data == {"note": "\\u0000"}


def test_the_forms_of_the_release_before_still_append_for_a_rolling_deploy(settings):
    """Processes of the release before migration 0018 send a content hash with each event: as the
    last attribute of the single event's row, and as ``flunq_append_new``'s ``p_hash``. It is
    ignored, and a retry of such an event is answered with the stored original."""
    from flunq_events import db, pgarrays

    settings.DB_PREPARE = False  # sent whole: no prepared statement is left on the connection
    stream = f"idem-{next(_streams)}"
    digest = bytes(range(32))
    fields = len(services.EVENT_FIELDS)
    old_single = db.Statement(
        "test_old_single",
        services.APPEND_ONE_SQL.replace(
            f", NULL)::flunq_new_event, ${fields + 1}, ${fields + 2})",
            f", ${fields + 1})::flunq_new_event, ${fields + 2}, ${fields + 3})",
        ),
    )
    single = from_structured(_event(f"{stream}-single", {}))
    old_single.rows([*services.event_params(single.row(stream)), digest.hex(), "any", None])

    assert services.APPEND_NEW.sql.endswith(b"::text[])")
    old_batch = db.Statement(
        "test_old_batch",
        services.APPEND_NEW.sql.decode()[:-1] + f", ${len(services.APPEND_NEW.param_formats) + 1}::bytea[])",
        param_formats=[*services.APPEND_NEW.param_formats, 1],
    )
    batch = [from_structured(_event(f"{stream}-batch-{n}", {})) for n in range(2)]
    params, _, _ = services.new_batch_params(batch, [stream] * 2, "any", None)
    old_batch.rows([*params, pgarrays.bytes_array([digest, digest], pgarrays.BYTEA)])

    retried = services.append([single, *batch], stream=stream).events
    assert [(item.version, item.duplicate) for item in retried] == [(0, True), (1, True), (2, True)]
