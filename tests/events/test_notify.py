"""Listeners are woken after an append commits, by the per-process notifier."""

from __future__ import annotations

import pytest

from events import services
from flunq_events.db import connect
from tests.events.helpers import new_event

pytestmark = pytest.mark.django_db(transaction=True)


def test_listeners_are_notified_after_an_append_commits():
    with connect() as listener:
        listener.execute("LISTEN flunq_events")
        services.append_one(new_event())
        notifications = listener.notifies(timeout=5, stop_after=1)
        assert [n.channel for n in notifications] == ["flunq_events"]
