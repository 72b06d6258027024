"""The append service: versions, expected versions, idempotency, atomic batches."""

from __future__ import annotations

import threading
import time

import orjson
import psycopg
import pytest
from django.db import connection

from events import horizon, selectors, services
from events.cloudevents import from_structured
from flunq_events.errors import (
    DuplicateEventConflict,
    InvalidEvent,
    InvalidRequest,
    StreamDeleted,
    TenantForbidden,
    WrongExpectedVersion,
)
from streams.models import Stream
from streams.services import create_stream, delete_stream
from tests.conftest import database_url_of_test_db
from tests.events.helpers import cloudevent, new_event

pytestmark = pytest.mark.django_db(transaction=True)


def test_versions_are_dense_from_zero_and_positions_increase():
    results = [services.append_one(new_event(executionid="x1")) for _ in range(5)]
    assert [r.version for r in results] == [0, 1, 2, 3, 4]
    assert all(r.stream == "execution-x1" for r in results)
    positions = [r.position for r in results]
    assert positions == sorted(positions) and len(set(positions)) == 5
    stream = Stream.objects.get(name="execution-x1")
    assert stream.last_version == 4 and stream.category == "execution"


@pytest.mark.parametrize(
    ("attributes", "stream"),
    [
        ({"executionid": "e7", "workflowid": "w1"}, "execution-e7"),
        ({"workflowid": "w1"}, "workflow-w1"),
        ({}, "task"),
        ({"type": "io.flunq.workflow.execution.started"}, "workflow.execution"),
        ({"type": "ping"}, "ping"),
    ],
)
def test_stream_derivation(attributes, stream):
    type_ = attributes.pop("type", "task.completed")
    assert services.append_one(new_event(type_, **attributes)).stream == stream


def test_expected_version_rules():
    event = new_event
    services.append([event()], stream="orders-1", expected_version=services.NO_STREAM)
    with pytest.raises(WrongExpectedVersion) as error:
        services.append([event()], stream="orders-1", expected_version=services.NO_STREAM)
    assert error.value.extra == {"stream": "orders-1", "expected_version": "no_stream", "actual_version": 0}
    services.append([event()], stream="orders-1", expected_version="0")
    services.append([event()], stream="orders-1", expected_version=services.STREAM_EXISTS)
    with pytest.raises(WrongExpectedVersion):
        services.append([event()], stream="orders-2", expected_version=services.STREAM_EXISTS)
    with pytest.raises(WrongExpectedVersion) as error:
        services.append([event()], stream="orders-1", expected_version="1")
    assert error.value.extra["actual_version"] == 2
    services.append([event()], stream="orders-1", expected_version=services.ANY)


def test_parse_expected_version():
    assert services.parse_expected_version(None) == "any"
    assert services.parse_expected_version("No_Stream") == "no_stream"
    assert services.parse_expected_version(3) == "3"
    for bad in ("-1", "x", "1.5", "99999999999999999999", True):
        with pytest.raises(InvalidRequest):
            services.parse_expected_version(bad)


def test_concurrent_appends_with_the_same_expected_version_exactly_one_wins():
    services.append([new_event()], stream="race-1")
    url = database_url_of_test_db()
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def writer(n: int) -> None:
        # Real concurrent connections, each its own transaction.
        with psycopg.connect(url, autocommit=True) as conn:
            barrier.wait()
            row = new_event().row("race-1")
            try:
                conn.execute("SELECT * FROM flunq_append(%s::json, '0')", [orjson.dumps([row]).decode()])
                outcomes.append("won")
            except psycopg.Error as exc:
                outcomes.append(exc.sqlstate)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["FQ002"] * 7 + ["won"]
    assert Stream.objects.get(name="race-1").last_version == 1


def test_idempotent_retry_returns_the_original():
    event = new_event(workflowid="w9", data={"a": 1})
    first = services.append_one(event)
    again = services.append_one(new_event(workflowid="w9", data={"a": 1}, id=event.id))
    assert again.duplicate and not first.duplicate
    assert (again.position, again.version, again.stream) == (first.position, first.version, first.stream)
    assert Stream.objects.get(name="workflow-w9").last_version == 0


def test_same_id_with_different_content_is_a_conflict():
    event = new_event(data={"a": 1})
    services.append_one(event)
    with pytest.raises(DuplicateEventConflict):
        services.append_one(new_event(data={"a": 2}, id=event.id))
    with pytest.raises(DuplicateEventConflict):  # same event, other stream
        services.append([new_event(data={"a": 1}, id=event.id)], stream="elsewhere")


def test_batch_is_atomic():
    existing = services.append_one(new_event(executionid="b1"))
    batch = [new_event(executionid="b1"), new_event(executionid="b1")]
    with pytest.raises(WrongExpectedVersion):
        services.append(batch, expected_version="5")
    assert Stream.objects.get(name="execution-b1").last_version == existing.version
    result = services.append(batch)
    assert [r.version for r in result.events] == [1, 2]
    assert result.events[1].position == result.events[0].position + 1


def test_batch_mixing_new_and_stored_events_is_refused():
    stored = new_event()
    services.append_one(stored)
    with pytest.raises(DuplicateEventConflict):
        services.append([new_event(id=stored.id), new_event()])


def test_batch_spanning_streams_locks_each_and_numbers_each():
    result = services.append(
        [new_event(executionid="m1"), new_event(executionid="m2"), new_event(executionid="m1")]
    )
    assert [(r.stream, r.version) for r in result.events] == [
        ("execution-m1", 0),
        ("execution-m2", 0),
        ("execution-m1", 1),
    ]
    with pytest.raises(InvalidRequest):
        services.append([new_event(executionid="m1"), new_event(executionid="m2")], expected_version="1")


def test_duplicate_ids_inside_one_batch_are_refused():
    event = new_event()
    with pytest.raises(InvalidRequest):
        services.append([event, new_event(id=event.id)])


def test_deleted_stream_refuses_appends_until_recreated():
    services.append([new_event()], stream="cart-1")
    delete_stream("cart-1")
    with pytest.raises(StreamDeleted):
        services.append([new_event()], stream="cart-1")
    create_stream("cart-1")
    result = services.append_one(new_event(), stream="cart-1")
    assert result.version == 1  # versions continue; old events are hidden from stream reads
    page = selectors.read_stream("cart-1", from_version=None, limit=10)
    assert [e["version"] for e in page.events] == [1]


def test_invalid_stream_name_is_refused():
    with pytest.raises(InvalidEvent):
        services.append([new_event()], stream="has space")
    with pytest.raises(InvalidEvent):
        services.append_one(new_event(executionid="a/b"))


def test_events_are_append_only_in_the_database():
    services.append_one(new_event(executionid="ro"))
    with connection.cursor() as cursor:
        for statement in ("UPDATE flunq_events SET type = 'x'", "DELETE FROM flunq_events"):
            with pytest.raises(Exception, match="append-only"):
                cursor.execute(statement)
    assert (
        selectors.read_stream("execution-ro", from_version=None, limit=5).events[0]["type"]
        == "task.completed"
    )


def test_purge_removes_only_a_deleted_streams_events():
    from streams.services import purge_stream

    services.append([new_event(), new_event()], stream="tmp-1")
    services.append_one(new_event(), stream="keep-1")
    with pytest.raises(Exception, match="only a deleted stream"):
        purge_stream("tmp-1")
    delete_stream("tmp-1")
    assert purge_stream("tmp-1") == 2
    assert selectors.read_stream("keep-1", from_version=None, limit=5).events


def test_append_inside_a_transaction_must_be_its_first_write():
    from django.db import transaction

    with pytest.raises(InvalidRequest), transaction.atomic():
        Stream.objects.create(name="first-write", category="first")
        services.append_one(new_event())


@pytest.fixture(params=["single-event function", "batch function"])
def append_one_way(request, settings):
    """``append_one`` through each of the two SQL functions: a single event outside a transaction
    takes ``flunq_append_one``; inside ``transaction.atomic()`` it takes ``flunq_append``."""
    from django.db import transaction

    settings.DB_PREPARE = request.param == "single-event function"  # and both statement modes

    def append_one(event, **options):
        if request.param == "single-event function":
            return services.append_one(event, **options)
        with transaction.atomic():
            return services.append_one(event, **options)

    return append_one


def test_both_append_functions_keep_the_same_rules(append_one_way):
    first = append_one_way(new_event(data={"a": 1}), stream="same-1", expected_version=services.NO_STREAM)
    assert (first.version, first.duplicate) == (0, False)
    retry = append_one_way(new_event(data={"a": 1}, id=first.event.id), stream="same-1")
    assert retry.duplicate and (retry.position, retry.version) == (first.position, 0)
    with pytest.raises(DuplicateEventConflict):
        append_one_way(new_event(data={"a": 2}, id=first.event.id), stream="same-1")
    with pytest.raises(WrongExpectedVersion) as error:
        append_one_way(new_event(), stream="same-1", expected_version="5")
    assert error.value.extra["actual_version"] == 0
    second = append_one_way(new_event(), stream="same-1", expected_version="0")
    assert second.version == 1 and second.position > first.position
    assert Stream.objects.get(name="same-1").last_version == 1
    delete_stream("same-1")
    with pytest.raises(StreamDeleted):
        append_one_way(new_event(), stream="same-1")
    horizon.wait_for(second.position, timeout=10)
    assert [e["version"] for e in selectors.read_all(after=0, limit=10).events] == [0, 1]


def test_both_append_functions_refuse_the_same_stream_states(append_one_way):
    with pytest.raises(WrongExpectedVersion) as error:
        append_one_way(new_event(), stream="states-1", expected_version=services.STREAM_EXISTS)
    assert error.value.extra["actual_version"] == -1
    append_one_way(new_event(), stream="states-1", expected_version=services.NO_STREAM, tenant="acme")
    with pytest.raises(WrongExpectedVersion) as error:
        append_one_way(new_event(), stream="states-1", expected_version=services.NO_STREAM, tenant="acme")
    assert error.value.extra["actual_version"] == 0
    with pytest.raises(TenantForbidden) as error:
        append_one_way(new_event(), stream="states-1", tenant="other")
    assert error.value.extra == {"stream": "states-1"}  # nothing else of another tenant's stream
    assert append_one_way(new_event(), stream="states-1", tenant="acme").version == 1


def test_a_retry_gets_the_original_whatever_happened_to_the_stream_since(append_one_way):
    event = new_event(data={"a": 1})
    first = append_one_way(event, stream="retry-1", expected_version=services.NO_STREAM)
    append_one_way(new_event(), stream="retry-1")
    again = append_one_way(new_event(data={"a": 1}, id=event.id), stream="retry-1", expected_version="0")
    assert again.duplicate and again.position == first.position  # the expected version is stale
    delete_stream("retry-1")
    again = append_one_way(new_event(data={"a": 1}, id=event.id), stream="retry-1")
    assert again.duplicate and again.position == first.position  # the stream is deleted


def test_both_append_functions_keep_the_stream_row_up_to_date(append_one_way):
    create_stream("kept-1")  # empty, and without a tenant: its first event gives it one
    first = append_one_way(new_event(tenantid="acme"), stream="kept-1")
    second = append_one_way(new_event(tenantid="acme"), stream="kept-1")
    row = Stream.objects.get(name="kept-1")
    assert (first.version, second.version) == (0, 1)
    assert (row.last_version, row.last_position, row.last_event_at, row.tenant) == (
        1, second.position, second.recordedtime, "acme",
    )  # fmt: skip
    new = append_one_way(new_event(tenantid="acme"), stream="kept-2")  # no row yet
    row = Stream.objects.get(name="kept-2")
    assert (row.category, row.last_version, row.last_position, row.tenant) == (
        "kept",
        0,
        new.position,
        "acme",
    )


def test_retention_values_are_checked_where_they_are_set_not_by_the_database():
    """flunq_streams has no CHECK constraints (every append updates its row); the API and the
    admin's form refuse negative values themselves."""
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        Stream(name="r-1", category="r", max_age=-1, max_count=-1).full_clean()
    assert set(error.value.message_dict) == {"max_age", "max_count"}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'flunq_streams'::regclass AND contype = 'c'"
        )
        assert cursor.fetchone() == (0,)


def test_the_batch_functions_keep_one_generic_plan_for_every_batch_size():
    """flunq_append and flunq_append_new plan their statements once (finding 15 in
    docs/benchmarks.md); the same plans must serve batches of any size and spread, called over and
    over in one session."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT proname, proconfig FROM pg_proc WHERE proname IN ('flunq_append', 'flunq_append_new')"
        )
        assert dict(cursor.fetchall()) == {
            name: ["plan_cache_mode=force_generic_plan"] for name in ("flunq_append", "flunq_append_new")
        }
    for round_ in range(3):
        for size, spread in ((2, 1), (6, 3), (100, 1), (40, 40)):
            events = [new_event(data={"n": n}, executionid=f"generic-{size}-{spread}-{n % spread}")
                      for n in range(size)]  # fmt: skip
            versions: dict[str, list[int]] = {}
            for item in services.append(events).events:
                versions.setdefault(item.stream, []).append(item.version)
            assert len(versions) == spread
            for stream, numbers in versions.items():
                first = round_ * (size // spread)
                assert numbers == list(range(first, first + size // spread)), stream


@pytest.fixture(
    params=["outside a transaction", "outside a transaction, unprepared", "inside transaction.atomic()"]
)
def append_batch_way(request, settings):
    """``append`` of a batch both ways: outside a transaction it is sent without the look-up of
    stored (source, id) and sent again with it when refused; inside one, with the look-up."""
    from django.db import transaction

    settings.DB_PREPARE = request.param != "outside a transaction, unprepared"

    def append(events, **options):
        if request.param.startswith("outside"):
            return services.append(events, **options)
        with transaction.atomic():
            return services.append(events, **options)

    return append


def test_a_batch_retry_gets_the_originals_whatever_happened_to_the_stream_since(append_batch_way):
    def batch(content: int = 1):
        return [new_event(data={"n": n, "content": content}, id=f"batch-retry-{n}") for n in range(3)]

    first = append_batch_way(batch(), stream="batch-retry-1", expected_version=services.NO_STREAM)
    assert [(item.version, item.duplicate) for item in first.events] == [(0, False), (1, False), (2, False)]
    append_batch_way([new_event()], stream="batch-retry-1")
    for _ in range(2):
        again = append_batch_way(batch(), stream="batch-retry-1", expected_version=services.NO_STREAM)
        assert again.duplicate  # the expected version is stale
        assert [item.position for item in again.events] == [item.position for item in first.events]
        delete_stream("batch-retry-1")  # and then the stream is deleted
    with pytest.raises(DuplicateEventConflict) as error:
        append_batch_way(batch(content=2), stream="batch-retry-1")
    assert len(error.value.extra["events"]) == 3
    with pytest.raises(DuplicateEventConflict) as error:  # stored and new events mixed
        append_batch_way([*batch()[:2], new_event()], stream="batch-retry-1")
    assert (error.value.extra["existing"], error.value.extra["batch"]) == (2, 3)
    with pytest.raises(DuplicateEventConflict) as error:  # another tenant's: names nothing of them
        append_batch_way(batch(), stream="batch-retry-2", tenant="other")
    assert error.value.extra == {}
    with pytest.raises(StreamDeleted):
        append_batch_way([new_event(), new_event()], stream="batch-retry-1")
    assert Stream.objects.get(name="batch-retry-1").last_version == 3


def test_both_batch_paths_number_the_events_and_keep_the_stream_rows(append_batch_way):
    """Outside a transaction ``flunq_append_new`` takes the events numbered by the caller and
    returns one row; inside, ``flunq_append`` numbers them itself. What each event got must be
    what was stored, and each stream's row must follow, whatever the batch's streams and order."""
    append_batch_way([new_event(), new_event()], stream="rows-b")  # an existing stream
    create_stream("rows-c")  # empty, without a tenant: its first event of this batch gives it one
    batch = [
        new_event(tenantid="acme", executionid="rows-z"),  # new, named after the others
        new_event(executionid="rows-b"),
        new_event(tenantid="acme", executionid="rows-c"),
        new_event(tenantid="beta", executionid="rows-z"),
        new_event(executionid="rows-b"),
        new_event(tenantid="beta", executionid="rows-c"),
    ]
    result = append_batch_way(batch, stream=None)
    got = [(item.stream, item.version, item.position, item.recordedtime) for item in result.events]
    assert [(stream, version) for stream, version, _, _ in got] == [
        ("execution-rows-z", 0), ("execution-rows-b", 0), ("execution-rows-c", 0),
        ("execution-rows-z", 1), ("execution-rows-b", 1), ("execution-rows-c", 1),
    ]  # fmt: skip
    positions = [position for _, _, position, _ in got]
    assert positions == list(range(positions[0], positions[0] + 6))
    horizon.wait_for(positions[-1], timeout=10)
    stored = selectors.read_all(after=positions[0] - 1, limit=10).events
    assert [(e["stream"], e["version"], e["position"], e["id"]) for e in stored] == [
        (stream, version, position, event.id)
        for (stream, version, position, _), event in zip(got, batch, strict=True)
    ]
    assert {item.recordedtime for item in result.events} == {got[0][3]}
    rows = {row.name: row for row in Stream.objects.filter(name__startswith="execution-rows-")}
    assert {name: (row.last_version, row.last_position, row.last_event_at, row.tenant)
            for name, row in rows.items()} == {
        "execution-rows-z": (1, positions[3], got[0][3], "acme"),
        "execution-rows-b": (1, positions[4], got[0][3], None),
        "execution-rows-c": (1, positions[5], got[0][3], "acme"),
    }  # fmt: skip
    assert rows["execution-rows-z"].category == "execution"


def test_both_batch_paths_store_every_attribute_as_given(append_batch_way):
    """Every attribute, in every form an event can take, stored by either batch path (each
    attribute an array in binary outside a transaction, JSON inside) and read back as given."""
    import base64

    given = [
        cloudevent(subject="s/1", time="2026-11-29T05:00:00.123456+02:00", datacontenttype="application/json",
                   dataschema="urn:schema:1", tenantid="acme", workflowid="w", executionid="all-1", taskid="t",
                   correlationid="c", causationid="z", data={"nested": [1, 2.5, None, "é漢字🙂"], "q": 'a"b\\c'}),
        cloudevent(executionid="all-1", data="just a string", traceparent="00-abc-01", retries=3, urgent=False),
        cloudevent(executionid="all-1", datacontenttype="application/octet-stream",
                   data_base64=base64.b64encode(bytes(range(256))).decode()),
        cloudevent(executionid="all-1", subject="", data=[], correlationid="{a,b} NULL"),
        cloudevent(executionid="all-1"),  # no data at all
    ]  # fmt: skip
    result = append_batch_way([from_structured(event) for event in given])
    horizon.wait_for(result.last_position, timeout=10)
    stored = selectors.read_stream("execution-all-1", from_version=None, limit=10).events
    server = ("stream", "version", "position", "recordedtime")

    def as_json(value):
        return orjson.loads(orjson.dumps(value, option=orjson.OPT_UTC_Z))

    assert [as_json({k: v for k, v in event.items() if k not in server}) for event in stored] == [
        as_json(from_structured(event).attributes()) for event in given
    ]
    again = append_batch_way([from_structured(event) for event in given])  # a retry: the same events
    assert again.duplicate and [item.position for item in again.events] == [e["position"] for e in stored]


def test_both_batch_paths_keep_data_base64_over_data(append_batch_way):
    """An event built in code may carry both; its attributes keep ``data_base64``, and so must the
    stored row, whichever path stores it."""
    from events.cloudevents import NewEvent

    both = NewEvent("both-1", "/tests", "task.completed", data={"a": 1}, has_data=True, data_base64="AA==")
    append_batch_way([both, new_event()], stream="both-1")
    with connection.cursor() as cursor:
        cursor.execute("SELECT data IS NULL, data_base64 FROM flunq_events WHERE id = 'both-1'")
        assert cursor.fetchone() == (True, b"\x00")


def test_the_new_batch_function_takes_the_streams_in_its_callers_order():
    """``flunq_append_new`` numbers the streams as its caller lists them (sorted by code point) and
    must not sort them again: the database's collation may order names otherwise (``B`` before
    ``a`` by code point, after it in en-US). Listed here against code-point order, a function that
    sorted them would swap the events' streams."""
    from flunq_events import pgarrays

    events = [new_event(executionid="order-a"), new_event(executionid="order-B")]
    streams = ["execution-order-a", "execution-order-B"]
    summary = [
        {"name": name, "events": 1, "last": index, "tenantid": None} for index, name in enumerate(streams)
    ]
    services.APPEND_NEW.rows(
        [
            orjson.dumps(summary).decode(), "any", None,
            pgarrays.int4_array([1, 2]), pgarrays.int4_array([0, 0]),
            *(services._attribute_array(events, name) for name in services._ARRAY_ATTRIBUTES),
        ]
    )  # fmt: skip
    for event, stream in zip(events, streams, strict=True):
        assert selectors.get_event(event.id, event.source)["stream"] == stream
    assert {row.name: row.last_version for row in Stream.objects.filter(name__in=streams)} == dict.fromkeys(
        streams, 0
    )


def test_a_new_batch_from_a_release_before_still_appends_for_a_rolling_deploy():
    """Processes of the release before migration 0017 send new batches to ``flunq_append`` with
    ``p_probe => false``."""
    rows = [new_event(executionid="rolling-b").row("execution-rolling-b") for _ in range(2)]
    with psycopg.connect(database_url_of_test_db(), autocommit=True) as conn:
        appended = conn.execute(
            "SELECT o_stream, o_version FROM flunq_append(%s::json, 'any', NULL, false)",
            [orjson.dumps(rows).decode()],
        ).fetchall()
    assert appended == [("execution-rolling-b", 0), ("execution-rolling-b", 1)]


def test_a_new_batch_outside_a_transaction_skips_the_look_up(settings):
    settings.DB_PREPARE = True
    services.append([new_event(), new_event()])
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert [text.split("(", 1)[0] for text in prepared if "flunq_append(" in text or "_new(" in text] == [
        "SELECT * FROM flunq_append_new"
    ]
    stored = services.append_one(new_event(data={"a": 1}))
    row = stored.event.row(stored.stream)
    with psycopg.connect(database_url_of_test_db(), autocommit=True) as conn:
        payload = orjson.dumps([row]).decode()
        assert conn.execute("SELECT o_position FROM flunq_append(%s::json)", [payload]).fetchone() == (
            stored.position,
        )
        with pytest.raises(psycopg.errors.UniqueViolation, match="flunq_events_source_id"):
            conn.execute("SELECT o_position FROM flunq_append(%s::json, 'any', NULL, false)", [payload])


def test_a_batch_that_deadlocks_with_a_concurrent_writer_gets_an_answer_not_an_error():
    """Our batch inserts x, then waits for y, held by another transaction that then inserts x:
    PostgreSQL stops one of the two. Ours, stopped, is sent again and finds the other's events."""
    from flunq_events.errors import ServiceError

    x, y = new_event(data={"n": 1}), new_event(data={"n": 2})
    other = psycopg.connect(database_url_of_test_db())
    other_pid = other.info.backend_pid
    other.execute(
        "SELECT o_position FROM flunq_append(%s::json)", [orjson.dumps([y.row("other-1")]).decode()]
    )
    outcome: dict[str, object] = {}

    def ours() -> None:
        try:
            outcome["appended"] = services.append([x, y], stream="ours-1")
        except Exception as exc:  # the test reports what came out
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=ours)
    thread.start()
    try:
        with psycopg.connect(database_url_of_test_db(), autocommit=True) as watcher:
            for _ in range(500):  # until our statement waits for the other's y
                waiting = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> %s "
                    "AND query LIKE '%%flunq_append%%'",
                    [other_pid],
                ).fetchone()[0]
                if waiting:
                    break
                time.sleep(0.01)
            assert waiting, "our append never waited for the other transaction"
        time.sleep(0.3)  # so that our statement's deadlock check comes first and stops it
        row = x.row("other-1")
        other.execute(
            "INSERT INTO flunq_events (position, xid, stream, version, id, source, specversion, type, "
            "data, extensions, recordedtime) SELECT nextval('flunq_position_seq'), "
            "pg_current_xact_id(), 'other-1', 1, %s, %s, '1.0', %s, '{}', '{}', now()",
            [row["id"], row["source"], row["type"]],
        )
        other.commit()
    finally:
        other.close()
        thread.join()
    error = outcome.get("error")
    assert error is None or isinstance(error, ServiceError), repr(error)
    assert isinstance(error, DuplicateEventConflict)  # the other's x and y are stored, with other content


def test_the_json_form_of_the_single_append_still_appends_for_a_rolling_deploy():
    """Processes of the release before migration 0016 send the event as JSON while it migrates."""
    row = new_event(executionid="rolling").row("execution-rolling")
    with psycopg.connect(database_url_of_test_db(), autocommit=True) as conn:
        appended = conn.execute(
            "SELECT o_stream, o_version FROM flunq_append_one(%s::json, %s, %s)",
            (orjson.dumps(row).decode(), "any", None),
        ).fetchone()
    assert appended == ("execution-rolling", 0)
    again = services.append([new_event(id=row["id"], executionid="rolling")]).events[0]
    assert (again.version, again.duplicate) == (0, True)  # the same event, stored once
