"""The page query renders each event in PostgreSQL: it must match the log's own rendering."""

from __future__ import annotations

import base64
from datetime import datetime

import orjson
import psycopg
import pytest
from django.db import connection

from events import services
from events.cloudevents import from_structured
from events.selectors import COLUMNS, to_cloudevent
from relay.messages import read_batch, with_structured
from tests.conftest import database_url_of_test_db
from tests.relay.helpers import settle

pytestmark = pytest.mark.django_db(transaction=True)

ODD = 'quote " backslash \\ slash / tab \t newline \n nul-free \x01\x1f del \x7f é ✓ 𝄞 \u2028'


def as_text(value) -> str:
    """An attribute as text the way Redis fields and Kafka headers carry it."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@pytest.mark.parametrize("binary", [False, True], ids=["django-cursor", "own-binary-session"])
def test_renderings_match_the_log_rendering(binary):
    events = [
        {"specversion": "1.0", "id": "m-1", "source": "/m", "type": "task.completed", "data": {"a": [1, 2.5, None]}},
        {"specversion": "1.0", "id": "m-2", "source": "/m", "type": "t", "subject": ODD, "time": "2026-01-31T12:00:00Z",
         "datacontenttype": "application/json", "dataschema": "https://example.com/s", "tenantid": "t1",
         "workflowid": "w", "executionid": "x", "taskid": "k", "correlationid": "c", "causationid": "z",
         "zeta": ODD, "alpha": 7, "big": -9223372036854775808, "flag": True, "off": False, "data": ODD},
        {"specversion": "1.0", "id": ODD, "source": ODD, "type": "t", "time": "2026-01-31T12:00:00.000001+02:00",
         "datacontenttype": "application/octet-stream", "data_base64": base64.b64encode(bytes(range(256)) * 3).decode()},
        {"specversion": "1.0", "id": "m-4", "source": "/m", "type": "t", "time": "1999-12-31T23:59:59.5Z"},
    ]  # fmt: skip
    appended = services.append([from_structured(event) for event in events]).events
    settle()
    after = appended[0].position - 1
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT {COLUMNS} FROM flunq_events WHERE "position" > %s ORDER BY "position"', [after]
        )
        expected = [to_cloudevent(row) for row in cursor.fetchall()]
    if binary:  # the relay's own session (it reads in binary), in a time zone far from UTC
        with psycopg.connect(database_url_of_test_db(), autocommit=True) as conn:
            conn.execute("SET TIME ZONE 'Pacific/Kiritimati'")
            got = read_batch(after, 10, conn)
    else:
        got = read_batch(after, 10)
    assert [event.position for event in got] == [event.position for event in appended]
    for event, reference in zip(got, expected, strict=True):
        assert event.structured() == orjson.dumps(reference)
        text = {
            name: as_text(value) for name, value in reference.items() if name not in ("data", "data_base64")
        }
        assert list(event.attribute_pairs()) == list(text.items())
        if "data_base64" in reference:
            assert event.data == base64.b64decode(reference["data_base64"])
        elif "data" in reference:
            assert event.data == orjson.dumps(reference["data"])  # the stored JSON text
        else:
            assert event.data is None
        assert (event.id, event.source, event.type, event.stream) == (
            reference["id"], reference["source"], reference["type"], reference["stream"],
        )  # fmt: skip


def test_a_rendering_not_read_is_read_on_demand():
    (appended,) = services.append([from_structured({"specversion": "1.0", "id": "d-1", "source": "/d",
                                                    "type": "t", "data": {"x": 1}})]).events  # fmt: skip
    settle()
    (event,) = read_batch(appended.position - 1, 10, structured=False)
    assert event.fields is not None
    with pytest.raises(LookupError):
        event.structured()
    with_structured([event])
    assert orjson.loads(event.structured())["data"] == {"x": 1}
    (event,) = read_batch(appended.position - 1, 10, binary=False)
    assert event.data is None
    with pytest.raises(LookupError):
        event.attribute_text()
