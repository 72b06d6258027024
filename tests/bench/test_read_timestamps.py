"""Reads carry ``time`` and ``recordedtime`` as integer microseconds and rebuild them exactly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from events import selectors, services
from events.cloudevents import from_structured


@pytest.mark.django_db(transaction=True)
def test_times_read_back_exactly_in_every_read():
    moments = [
        "1969-07-20T20:17:40.123456Z",
        "2026-11-28T06:00:00Z",
        "2038-01-19T03:14:08.000001+02:00",
        None,
    ]
    events = [
        from_structured(
            {"specversion": "1.0", "id": f"t{n}", "source": "/bench", "type": "task.done"}
            | ({"time": moment} if moment else {})
        )
        for n, moment in enumerate(moments)
    ]
    result = services.append(events, stream="times-1")
    expected = [
        datetime(1969, 7, 20, 20, 17, 40, 123456, tzinfo=UTC),
        datetime(2026, 11, 28, 6, 0, 0, tzinfo=UTC),
        datetime(2038, 1, 19, 1, 14, 8, 1, tzinfo=UTC),
        None,
    ]
    page = selectors.read_all(0, 100)
    stream = selectors.read_stream("times-1", from_version=None, limit=10)
    for read in (page.events, stream.events):
        assert [event.get("time") for event in read] == expected
        assert [event["recordedtime"] for event in read] == [item.recordedtime for item in result.events]
        assert all(event["recordedtime"].utcoffset().total_seconds() == 0 for event in read)
    assert selectors.get_event("t0")["time"] == expected[0]
