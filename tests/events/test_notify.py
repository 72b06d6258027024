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


def test_a_forked_child_starts_a_notifier_of_its_own():
    import os

    from events.notify import notifier

    services.append_one(new_event())  # the parent's notifier thread runs
    child = os.fork()
    if child == 0:  # the child: the parent's thread did not survive the fork
        try:
            notifier.poke()
            os._exit(0 if notifier._thread.is_alive() and notifier._pid == os.getpid() else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert notifier._thread.is_alive()  # the parent's, untouched
