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


def test_the_notifier_connects_again_after_losing_its_connection():
    with connect() as listener:
        listener.execute("LISTEN flunq_events")
        services.append_one(new_event())
        assert len(list(listener.notifies(timeout=5, stop_after=1))) == 1
        # The notifier's session: the one whose last statement was its NOTIFY.
        killed = listener.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query = 'NOTIFY flunq_events' AND pid <> pg_backend_pid()"
        ).fetchall()
        assert killed == [(True,)]
        services.append_one(new_event())  # fails to notify, then connects again and notifies
        notifications = listener.notifies(timeout=5, stop_after=1)
        assert [n.channel for n in notifications] == ["flunq_events"]
