"""flunq_events.db.Statement: a hot statement on Django's connection, through libpq."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import DataError, IntegrityError, ProgrammingError, connection, transaction

from flunq_events.db import Statement

pytestmark = pytest.mark.django_db

ECHO = Statement("test_echo", "SELECT $1::bigint + 1, $2::text, $3::timestamptz, $4::text IS NULL")
FAILS = Statement("test_fails", "SELECT 1 / $1::int")
INSERT = Statement("test_insert", "INSERT INTO pg_temp.t VALUES ($1) RETURNING id")


@pytest.fixture(params=[True, False], ids=["prepared", "unprepared"])
def prepare(request, settings):
    settings.DB_PREPARE = request.param
    return request.param


def test_rows_come_back_typed(prepare):
    rows = ECHO.rows(("41", "é", "2026-11-28T15:00:00.25Z", None))
    assert rows == [(42, "é", datetime(2026, 11, 28, 15, 0, 0, 250000, tzinfo=UTC), True)]
    assert ECHO.rows(("1", "x", "2026-01-01T00:00:00Z", "y"))[0][3] is False


def test_text_parameters_may_be_str_subclasses(prepare):
    class Name(str):
        pass

    assert ECHO.rows((Name("41"), Name("é"), "2026-11-28T15:00:00Z", None))[0][:2] == (42, "é")


def test_errors_are_djangos_with_the_sqlstate_on_the_cause(prepare):
    with pytest.raises(DataError) as error:
        FAILS.rows(("0",))
    assert error.value.__cause__.sqlstate == "22012"  # division_by_zero
    assert FAILS.rows(("1",)) == [(1,)]  # the connection is usable afterwards


@pytest.mark.django_db(transaction=True)
def test_a_statement_the_server_forgot_is_prepared_again(settings):
    settings.DB_PREPARE = True
    assert ECHO.rows(("1", "a", "2026-01-01T00:00:00Z", None))[0][0] == 2
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE test_echo")
    assert ECHO.rows(("2", "b", "2026-01-01T00:00:00Z", None))[0][0] == 3


@pytest.mark.django_db(transaction=True)
def test_in_a_transaction_it_fails_once_and_prepares_on_the_next_call(settings):
    settings.DB_PREPARE = True
    ECHO.rows(("1", "a", "2026-01-01T00:00:00Z", None))
    with pytest.raises(ProgrammingError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DEALLOCATE test_echo")
        ECHO.rows(("1", "a", "2026-01-01T00:00:00Z", None))
    with transaction.atomic():
        assert ECHO.rows(("5", "a", "2026-01-01T00:00:00Z", None))[0][0] == 6


def test_a_unique_violation_is_an_integrity_error_naming_the_constraint(prepare):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE t (id text PRIMARY KEY)")
    assert INSERT.rows(("a",)) == [("a",)]
    with pytest.raises(IntegrityError) as error:
        INSERT.rows(("a",))
    assert error.value.__cause__.diag.constraint_name == "t_pkey"


@pytest.mark.django_db(transaction=True)
def test_rows_load_on_a_new_connection_with_loaders_of_its_own():
    """The loaders are kept per thread and connection: a new connection gets its own, with its
    time zone."""
    assert ECHO.rows(("1", "a", "2026-11-28T15:00:00Z", None))[0][2].utcoffset().total_seconds() == 0
    first = connection.connection
    connection.close()
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'Europe/Berlin'")
    try:
        moment = ECHO.rows(("1", "a", "2026-11-28T15:00:00Z", None))[0][2]
        assert connection.connection is not first
        assert (
            moment == datetime(2026, 11, 28, 15, 0, tzinfo=UTC) and moment.utcoffset().total_seconds() == 3600
        )
    finally:
        connection.close()


ARRAYS = Statement(
    "test_arrays",
    "SELECT $1::text[], $2::json[], $3::bytea[], $4::integer[], $5::text, $6::text[]",
    param_formats=[1, 1, 1, 1, 0, 1],
)


def test_binary_array_parameters_arrive_as_sent(prepare):
    """``flunq_events.pgarrays`` writes PostgreSQL's binary array format; what the text format
    would have to quote or escape (quotes, backslashes, braces, commas, spaces, NULL) goes as is."""
    from flunq_events import pgarrays

    texts = ["plain", "", None, 'q"uo\\te', "{a,b}", "NULL", " spaced ", "é漢字🙂"]
    repeated = ["é漢字🙂"] * 3  # the same value in every element
    documents = ['{"a": [1, 2.5, null]}', '"text"', None]
    digests = [bytes(range(256)), b"", None]
    numbers = [0, -1, 2**31 - 1, -(2**31)]
    row = ARRAYS.rows(
        (
            pgarrays.text_array(texts),
            pgarrays.text_array(documents, pgarrays.JSON),
            pgarrays.bytes_array(digests, pgarrays.BYTEA),
            pgarrays.int4_array(numbers),
            "text beside them",
            pgarrays.text_array(repeated),
        )
    )[0]
    assert row == (
        texts,
        [{"a": [1, 2.5, None]}, "text", None],
        digests,
        numbers,
        "text beside them",
        repeated,
    )
    assert ARRAYS.rows((None, None, None, None, None, None)) == [(None,) * 6]


def test_binary_array_elements_are_checked_by_the_server(prepare):
    from flunq_events import pgarrays

    with pytest.raises(DataError) as error:  # an element that is not JSON, in a json[]
        ARRAYS.rows((None, pgarrays.text_array(["{"], pgarrays.JSON), None, None, None, None))
    assert error.value.__cause__.sqlstate == "22P02"
    with pytest.raises(ProgrammingError) as error:  # another element type than the parameter's
        ARRAYS.rows((pgarrays.int4_array([1]), None, None, None, None, None))
    assert error.value.__cause__.sqlstate == "42804"
