"""``manage.py deliver`` as real processes: two at once never deliver twice, SIGTERM stops them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import defaultdict

import pytest
from django.db import connection

from subscriptions.listener import Listener
from tests.conftest import ROOT, database_url_of_test_db
from tests.subscriptions.conftest import append_to, run_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_workers_deliver_each_event_once_in_order_and_stop_on_sigterm(api, allow_local, receiver):
    sub = api.post(
        "/api/v1/subscriptions", {"name": "w", "kind": "webhook", "url": receiver.url}, format="json"
    ).json()
    connection.close()
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "DELIVER_POLL_SECONDS": "0.2",
        "LOG_LEVEL": "INFO",
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "manage.py", "deliver", "--concurrency", "4"],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    logs = [log_lines(worker) for worker in workers]
    try:
        # Both started (their SIGTERM handler installed): a SIGTERM sent during start-up would
        # end a worker before it could handle it.
        run_until(
            lambda: False, lambda: all(any("started" in line for line in log) for log in logs), timeout=60
        )
        expected = []
        for _ in range(4):
            for stream in range(10):
                expected += append_to(f"worker-{stream}", 5)
        run_until(lambda: False, lambda: len(receiver.ok_events()) >= len(expected), timeout=60)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [worker.wait(30) for worker in workers]
    assert codes == [0, 0]
    positions = [e["position"] for e in receiver.ok_events()]
    assert sorted(positions) == sorted(expected) and len(positions) == len(set(positions))
    per_stream = defaultdict(list)
    for e in receiver.ok_events():
        per_stream[e["stream"]].append(e["version"])
    assert all(versions == sorted(versions) for versions in per_stream.values())
    assert api.get(f"/api/v1/subscriptions/{sub['id']}").json()["progress"]["lag"] == 0


def log_lines(process: subprocess.Popen) -> list[str]:
    """The lines ``process`` writes to its stderr, collected as they come (so its pipe never fills)."""
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True).start()
    return lines


def test_listener_wakes_on_an_append():
    listener = Listener()
    try:
        assert listener.wait(0.01) is False  # connects and listens
        append_to("wake-1", 1)
        run_until(lambda: False, lambda: listener.wait(0.5))
    finally:
        listener.close()


@pytest.mark.parametrize("value", ["0", "-1", "513"])
def test_deliver_refuses_a_concurrency_out_of_range(value):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="--concurrency"):
        call_command("deliver", "--once", "--concurrency", value)
