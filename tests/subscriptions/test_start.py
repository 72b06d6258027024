"""Where a new subscription starts: a position or a time past the end of the log is its end."""

from __future__ import annotations

import pytest

from tests.subscriptions.conftest import append_to, caught_up

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/subscriptions"


def _fetch(api, sub: dict) -> list[int]:
    response = api.post(f"{URL}/{sub['id']}/fetch", {"consumer": "c1", "max_events": 10}, format="json")
    assert response.status_code == 200, response.json()
    return [message["event"]["position"] for message in response.json()["messages"]]


@pytest.mark.parametrize("start", [10**9, 2**63 - 1, "9999-12-31T23:59:59Z"])
def test_a_start_past_the_end_of_the_log_starts_at_its_end(api, start):
    """As ``now``: a checkpoint beyond the end would skip what is appended until the log got there."""
    append_to("start-0", 1)
    end = caught_up()
    filter_ = {"stream": "start-1"}
    created = api.post(URL, {"name": "far", "kind": "pull", "start": start, "filter": filter_}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["progress"]["checkpoint"] == end
    positions = append_to("start-1", 2)
    caught_up()
    assert _fetch(api, created.json()) == positions
